// The rep's microphone as 16 kHz PCM16 frames (AudioWorklet), and gapless playback of the
// persona's 24 kHz PCM16 that stops at once on barge-in.

export class MicrophoneDenied extends Error {}

export class Microphone {
  // `raw`: without the browser's gain control, noise suppression and echo cancellation (the
  // microphone test measures what the microphone itself delivers: gain control would hide clipping).
  constructor(onFrame, onLevel, { raw = false } = {}) {
    this.onFrame = onFrame;
    this.onLevel = onLevel;
    this.raw = raw;
    this.muted = false;
  }

  async start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new MicrophoneDenied("This browser can't use a microphone here. You can type instead.");
    }
    this.stopped = false;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: !this.raw, noiseSuppression: !this.raw, autoGainControl: !this.raw },
      });
    } catch (error) {
      throw new MicrophoneDenied(error && error.name === "NotAllowedError"
        ? "Microphone access was blocked. Allow it in the browser's address bar, or type instead."
        : "No microphone could be opened. You can type instead.");
    }
    if (this.stopped) {  // stopped while the browser was still asking: let go of what it granted
      stream.getTracks().forEach((track) => track.stop());
      return;
    }
    this.stream = stream;
    this.context = new AudioContext({ sampleRate: 16000 });
    await this.context.audioWorklet.addModule("/pcm-worklet.js");
    if (this.stopped) return;  // stop() has closed the stream and the context
    const source = this.context.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.context, "pcm-capture");
    this.node.port.onmessage = ({ data }) => {
      this.onLevel(this.muted ? 0 : data.level, this.muted ? 0 : data.clipped);
      if (!this.muted) this.onFrame(data.pcm);
    };
    source.connect(this.node);
    await this.context.resume();
  }

  stop() {
    this.stopped = true;
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    if (this.context) this.context.close().catch(() => {});
    this.stream = this.context = null;
  }
}

export class Player {
  constructor(sampleRate = 24000) {
    this.sampleRate = sampleRate;
    this.sources = new Set();
    this.next = 0;
    this.frames = 0;
  }

  ensure() {
    if (!this.context) this.context = new AudioContext();
    if (this.context.state === "suspended") this.context.resume().catch(() => {});
    return this.context;
  }

  play(arrayBuffer) {
    const context = this.ensure();
    const pcm = new Int16Array(arrayBuffer);
    if (!pcm.length) return;
    this.frames += 1;
    const buffer = context.createBuffer(1, pcm.length, this.sampleRate);
    const samples = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 0x8000;
    const source = context.createBufferSource();
    source.buffer = buffer;
    source.connect(context.destination);
    const at = Math.max(context.currentTime + 0.03, this.next);
    source.start(at);
    this.next = at + buffer.duration;
    this.sources.add(source);
    source.onended = () => this.sources.delete(source);
  }

  stop() {
    for (const source of this.sources) {
      try { source.stop(); } catch { /* already stopped */ }
    }
    this.sources.clear();
    this.next = 0;
  }

  close() {
    this.stop();
    if (this.context) this.context.close().catch(() => {});
    this.context = null;
  }
}
