"""What a live call needs from the process: providers chosen once from settings, and the limits."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import httpx
import msgspec
import openai

from coaching.brains.base import Brain
from coaching.brains.llm import LlmBackend, LlmBrain
from coaching.brains.scripted import ScriptedBrain
from coaching.call import CallOptions
from coaching.hints import HintOptions
from coaching.llm_hints import LlmHinter, Retriever
from coaching.persona import Persona
from coaching.providers.inference import InferencePool
from coaching.providers.stt.base import SpeechToText
from coaching.providers.stt.local import WhisperSTT
from coaching.providers.stt.openai import OpenAISTT
from coaching.providers.tts.base import TextToSpeech
from coaching.providers.tts.elevenlabs import ElevenLabsTTS
from coaching.providers.tts.openai import OpenAITTS
from coaching.providers.tts.piper import PiperTTS
from gateway.settings import Settings, SettingsError

__all__ = ["CallLimits", "CallServices", "build_call_services", "hint_options"]

log = logging.getLogger(__name__)


class CallLimits(msgspec.Struct, frozen=True, kw_only=True):
    max_live_per_user: int = 2
    max_call_s: float = 1800
    idle_s: float = 60
    resume_grace_s: float = 20
    max_frame_ms: int = 100


class CallServices(msgspec.Struct, kw_only=True):
    personas: dict[str, Persona]
    stt: SpeechToText
    tts: TextToSpeech
    brain: Brain
    pool: InferencePool
    options: CallOptions
    limits: CallLimits
    providers: dict[str, str]
    hints: HintOptions = HintOptions()
    llm_hints: LlmHinter | None = None
    # The knowledge base's search for an organization (set once the knowledge base exists): the
    # LLM hints add the passages it finds for the buyer's latest turn.
    retrieval: Callable[[uuid.UUID], Retriever] | None = None


def build_call_services(settings: Settings, personas: dict[str, Persona], llm_clients: dict[str, openai.AsyncOpenAI],
                        elevenlabs: httpx.AsyncClient | None) -> CallServices:
    """Chooses STT, TTS and the persona brain (`auto`: the API when its key is set, else local)."""
    pool = InferencePool(max_workers=settings.inference_threads, max_waiting=settings.inference_queue)
    stt_choice = settings.stt_provider
    if stt_choice == "auto":
        stt_choice = "openai" if "openai" in llm_clients else "local"
    # Transcribing or speaking a sentence again is safe: the SDK retries those; the brain is not
    # retried (its breaker moves on to the fallback instead).
    speech_client = llm_clients["openai"].with_options(max_retries=2) if "openai" in llm_clients else None
    stt: SpeechToText
    if stt_choice == "openai":
        if speech_client is None:
            raise SettingsError("STT_PROVIDER", "openai needs OPENAI_API_KEY")
        stt = OpenAISTT(speech_client)
    else:
        stt = WhisperSTT(pool)

    tts_choice = settings.tts_provider
    if tts_choice == "auto":
        tts_choice = "elevenlabs" if elevenlabs else "openai" if "openai" in llm_clients else "local"
    tts: TextToSpeech
    if tts_choice == "elevenlabs":
        if elevenlabs is None:
            raise SettingsError("TTS_PROVIDER", "elevenlabs needs ELEVENLABS_API_KEY")
        tts = ElevenLabsTTS(elevenlabs)
    elif tts_choice == "openai":
        if speech_client is None:
            raise SettingsError("TTS_PROVIDER", "openai needs OPENAI_API_KEY")
        tts = OpenAITTS(speech_client)
    else:
        tts = PiperTTS(pool)

    llm_choice = settings.llm_choice
    if llm_choice in ("openai", "openrouter") and llm_choice not in llm_clients:
        raise SettingsError("LLM_PROVIDER", f"{llm_choice} needs {llm_choice.upper()}_API_KEY")
    models = {"openrouter": settings.openrouter_model, "openai": settings.openai_model}
    brain: Brain
    if llm_choice == "scripted":
        brain = ScriptedBrain()
    else:
        order = [llm_choice] + [name for name in ("openrouter", "openai") if name != llm_choice and name in llm_clients]
        brain = LlmBrain([LlmBackend(name, llm_clients[name], models[name]) for name in order])
    limits = CallLimits(
        max_live_per_user=settings.max_live_sessions_per_user, max_call_s=settings.max_call_seconds,
        idle_s=settings.idle_timeout_seconds, resume_grace_s=settings.resume_grace_seconds,
    )
    llm_hints = None
    hints_choice = "off"
    hint_backend = next((name for name in (llm_choice, "openrouter", "openai") if name in llm_clients), None)
    if settings.hints_llm == "on" and hint_backend is None:
        raise SettingsError("HINTS_LLM", "on needs OPENROUTER_API_KEY or OPENAI_API_KEY")
    if settings.hints_llm != "off" and hint_backend is not None:
        llm_hints = LlmHinter(LlmBackend(hint_backend, llm_clients[hint_backend], models[hint_backend]),
                              interval_s=settings.hints_llm_interval_seconds)
        hints_choice = hint_backend
    providers: dict[str, str] = {"stt": stt_choice, "tts": tts_choice, "llm": llm_choice, "hints_llm": hints_choice}
    log.info("call providers chosen", extra=providers)
    return CallServices(personas=personas, stt=stt, tts=tts, brain=brain, pool=pool,
                        options=CallOptions(silence_ms=settings.vad_silence_ms),
                        limits=limits, providers=providers, hints=hint_options(settings), llm_hints=llm_hints)


def hint_options(settings: Settings) -> HintOptions:
    """The HINT_* thresholds in the engine's units."""
    return HintOptions(
        monologue_ms=settings.hint_monologue_seconds * 1000, talk_share=settings.hint_talk_share,
        discovery_by_ms=settings.hint_discovery_by_seconds * 1000,
        min_open_questions=settings.hint_min_open_questions, max_wpm=settings.hint_max_wpm,
        pace_jump=settings.hint_pace_jump, min_gap_ms=settings.hint_min_gap_seconds * 1000,
        repeat_ms=settings.hint_repeat_seconds * 1000,
    )
