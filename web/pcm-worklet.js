// Microphone samples (at the AudioContext's 16 kHz) to 20 ms PCM16 frames, with a level (RMS) and how many
// samples sat at full scale (clipping).
class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frame = new Int16Array(320);
    this.filled = 0;
    this.energy = 0;
    this.clipped = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      const sample = Math.max(-1, Math.min(1, channel[i]));
      this.frame[this.filled++] = sample < 0 ? sample * 0x8000 : sample * 0x7fff;
      this.energy += sample * sample;
      if (Math.abs(channel[i]) >= 0.99) this.clipped += 1;
      if (this.filled === this.frame.length) {
        const level = Math.sqrt(this.energy / this.frame.length);
        this.port.postMessage({ pcm: this.frame.buffer, level, clipped: this.clipped }, [this.frame.buffer]);
        this.frame = new Int16Array(320);
        this.filled = 0;
        this.energy = 0;
        this.clipped = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
