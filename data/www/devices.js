// Camera, microphone and speaker pickers. Switching a device replaces the
// sender's track (RTCRtpSender.replaceTrack): no renegotiation.
import { VIDEO_CONSTRAINTS } from './session.js';

const KINDS = { videoinput: 'video', audioinput: 'audio' };

export const canPickSpeaker = typeof HTMLMediaElement !== 'undefined' &&
  'setSinkId' in HTMLMediaElement.prototype;

export class Devices {
  /**
   * selects: {camera, mic, speaker} <select> elements; output: the element
   * playing the mix (its sink follows the speaker picker).
   */
  constructor(session, selects, output, onMessage) {
    this.session = session;
    this.selects = selects;
    this.output = output;
    this.onMessage = onMessage;
    this.list = [];
    this.busy = false;
    this.onChange = () => this.refresh(true);
    navigator.mediaDevices?.addEventListener?.('devicechange', this.onChange);
    session.addEventListener('change', (e) => {
      if (e.detail.what === 'track-ended') this.refresh(true);
    });
    selects.camera.addEventListener('change', () => this.use('videoinput', selects.camera.value));
    selects.mic.addEventListener('change', () => this.use('audioinput', selects.mic.value));
    selects.speaker.addEventListener('change', () => this.setSpeaker(selects.speaker.value));
    selects.speaker.closest('label')?.toggleAttribute('hidden', !canPickSpeaker);
  }

  dispose() {
    navigator.mediaDevices?.removeEventListener?.('devicechange', this.onChange);
  }

  activeId(kind) {
    const track = kind === 'videoinput' ? this.session.videoTrack : this.session.audioTrack;
    if (!track || track.readyState === 'ended') return null;
    return track.getSettings?.().deviceId ?? null;
  }

  /** Re-reads the device list; with `recover`, replaces a device that vanished. */
  async refresh(recover = false) {
    if (!navigator.mediaDevices?.enumerateDevices) return;
    this.list = await navigator.mediaDevices.enumerateDevices();
    this.fill(this.selects.camera, 'videoinput', 'Camera');
    this.fill(this.selects.mic, 'audioinput', 'Microphone');
    if (canPickSpeaker) this.fill(this.selects.speaker, 'audiooutput', 'Speaker');
    if (!recover || this.session.receiveOnly || this.session.state === 'left') return;
    for (const kind of Object.keys(KINDS)) {
      const track = kind === 'videoinput' ? this.session.videoTrack : this.session.audioTrack;
      const available = this.list.filter((d) => d.kind === kind && d.deviceId);
      const active = this.activeId(kind);
      const vanished = track && (track.readyState === 'ended' ||
        (active && available.length && !available.some((d) => d.deviceId === active)));
      if (vanished) {
        if (available.length) {
          this.onMessage?.(`${kind === 'videoinput' ? 'Camera' : 'Microphone'} disconnected; switching to ${available[0].label || 'another one'}.`);
          await this.use(kind, available[0].deviceId);
        } else {
          this.session.dropLocalTrack(KINDS[kind]);
        }
      } else if (!track && available.length && this.session.pc) {
        // A device arrived where we had none: start sending it.
        await this.use(kind, available[0].deviceId);
      }
    }
  }

  fill(select, kind, label) {
    const devices = this.list.filter((d) => d.kind === kind);
    const current = kind === 'audiooutput' ? (this.output.sinkId || 'default') : this.activeId(kind);
    select.replaceChildren(...devices.map((d, i) => {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || `${label} ${i + 1}`;
      o.selected = d.deviceId === current;
      return o;
    }));
    select.disabled = devices.length === 0 || (kind !== 'audiooutput' && this.session.receiveOnly);
  }

  async use(kind, deviceId) {
    if (!deviceId || this.busy || deviceId === this.activeId(kind)) return;
    this.busy = true;
    try {
      const constraints = kind === 'videoinput'
        ? { video: { ...VIDEO_CONSTRAINTS, deviceId: { exact: deviceId } } }
        : { audio: { ...this.session.audioConstraints, deviceId: { exact: deviceId } } };
      let stream;
      try {
        stream = await navigator.mediaDevices.getUserMedia(constraints);
      } catch (err) {
        if (err.name !== 'NotReadableError') throw err;
        // Phones often open one camera at a time: release ours and retry.
        (kind === 'videoinput' ? this.session.videoTrack : this.session.audioTrack)?.stop();
        stream = await navigator.mediaDevices.getUserMedia(constraints);
      }
      await this.session.replaceLocalTrack(stream.getTracks()[0]);
    } catch (err) {
      this.onMessage?.(`Could not switch device: ${err.message || err.name}`);
    } finally {
      this.busy = false;
      await this.refresh(false);
    }
  }

  async setSpeaker(deviceId) {
    if (!canPickSpeaker) return;
    try {
      await this.output.setSinkId(deviceId);
    } catch (err) {
      this.onMessage?.(`Could not switch speaker: ${err.message || err.name}`);
    }
  }
}
