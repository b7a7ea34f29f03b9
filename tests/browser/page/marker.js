// Audio/video offset as the receiver plays it (issue 15). A publisher sends, instead of
// the fake camera and microphone, a synthetic pair that marks the same instant once a
// period: a canvas video (black, with a small moving square so that the encoder has
// something to do) that turns white for `flashMs`, and a WebAudio track (silence) whose
// 1 kHz tone burst starts at the same tick (`audioDelayMs` later, to check the detector).
// A receiver finds, per remote sender, when each medium's marker is PLAYED:
//
//   video  requestVideoFrameCallback on the <video> element: the callback's frame is
//          drawn into a 16x12 canvas; the first bright frame after a dark one is a flash,
//          timed by the callback's `expectedDisplayTime` (performance.now() clock: when
//          the compositor expects to show it);
//   audio  the remote track into an AudioWorklet (through a MediaStreamAudioSourceNode of
//          the page's AudioContext) that finds the first sample above 0.1 after 300 ms
//          below it: its frame number, as context time, is turned into the time the
//          context's output device plays it with `getOutputTimestamp()` (a context time
//          and the performance.now() time at which the device plays it; the device's
//          delay is in that pair already, so `outputLatency`/`baseLatency` are not added
//          again: they are reported beside the figures).
//
// Each video flash is paired with the audio onset nearest to it (within half a period);
// per sender the offsets video minus audio are returned, with the sender-side marks.

const TONE_HZ = 1000;
const THRESHOLD = 0.1;
const HOLDOFF_S = 0.3;

let audioContext = null;
let workletReady = null;

/** The page's one AudioContext (running: the harness allows autoplay). */
export function getAudioContext() {
  if (!audioContext) audioContext = new AudioContext({ latencyHint: 'interactive' });
  if (audioContext.state !== 'running') audioContext.resume().catch(() => {});
  return audioContext;
}

const WORKLET = `
class OnsetDetector extends AudioWorkletProcessor {
  constructor() {
    super();
    this.quiet = 1e9;
    this.holdoff = Math.round(${HOLDOFF_S} * sampleRate);
  }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (!ch) return true;
    for (let i = 0; i < ch.length; i++) {
      if (Math.abs(ch[i]) > ${THRESHOLD}) {
        if (this.quiet >= this.holdoff) this.port.postMessage({ frame: currentFrame + i, sampleRate });
        this.quiet = 0;
      } else this.quiet++;
    }
    return true;
  }
}
registerProcessor('onset-detector', OnsetDetector);
`;

function worklet() {
  if (!workletReady) {
    const url = URL.createObjectURL(new Blob([WORKLET], { type: 'text/javascript' }));
    workletReady = getAudioContext().audioWorklet.addModule(url);
  }
  return workletReady;
}

/**
 * A ticker not subject to main-thread timer throttling: a worker's setInterval posting
 * to the page.
 */
function ticker(ms, fn) {
  const src = `setInterval(() => postMessage(0), ${ms});`;
  const w = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
  w.onmessage = fn;
  return () => w.terminate();
}

// ---- the publisher --------------------------------------------------------------

const source = { marks: [], stop: null, stream: null, options: null };

/**
 * The synthetic stream: [video, audio] (audio unless `audio: false`), one MediaStream.
 * Marks start at the first tick after each `periodMs` boundary; `audioDelayMs` moves
 * the tone later than the flash.
 */
export async function markerStream({ audio = true, fps = 15, width = 640, height = 480, periodMs = 1000, flashMs = 200, toneMs = 100, audioDelayMs = 0, noise = false } = {}) {
  // Once made, the same pair for every connection; made again when its tracks ended
  // (mediasoup-client stops a closed producer's track: the media restart).
  if (source.stream?.getTracks().every((t) => t.readyState === 'live')) return source.stream;
  source.stop?.();
  source.options = { audio, fps, width, height, periodMs, flashMs, toneMs, audioDelayMs, noise };
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const g = canvas.getContext('2d');
  // `noise`: the frame is random 16x16 blocks, new every frame, so that the encoder spends
  // its whole budget (a big camera's or a screen share's bitrate, not the fake device's).
  const blocks = noise ? new OffscreenCanvas(Math.ceil(width / 16), Math.ceil(height / 16)) : null;
  const video = canvas.captureStream(fps).getVideoTracks()[0];
  const tracks = [video];
  let gain = null;
  let ctx = null;
  if (audio) {
    ctx = getAudioContext();
    const osc = new OscillatorNode(ctx, { frequency: TONE_HZ });
    gain = new GainNode(ctx, { gain: 0 });
    const dest = ctx.createMediaStreamDestination();
    osc.connect(gain).connect(dest);
    osc.start();
    tracks.push(dest.stream.getAudioTracks()[0]);
  }
  const t0 = performance.now();
  let nextMark = Math.ceil(t0 / periodMs) * periodMs + periodMs;
  let flashUntil = 0;
  let frame = 0;
  const draw = () => {
    const now = performance.now();
    if (now >= nextMark) {
      nextMark += periodMs * Math.max(1, Math.ceil((now - nextMark + 1) / periodMs));
      flashUntil = now + flashMs;
      const mark = { at: now };
      if (gain) {
        const t = ctx.currentTime + audioDelayMs / 1000;
        gain.gain.setValueAtTime(0.5, t);
        gain.gain.setValueAtTime(0, t + toneMs / 1000);
        mark.contextTime = t;
      }
      source.marks.push(mark);
      if (source.marks.length > 600) source.marks.shift();
    }
    if (now < flashUntil) {
      g.fillStyle = '#fff';
      g.fillRect(0, 0, width, height);
    } else {
      g.fillStyle = '#000';
      g.fillRect(0, 0, width, height);
      g.fillStyle = '#808080';
      g.fillRect((frame * 8) % (width - 64), height - 80, 64, 64);
    }
    if (blocks) {
      const bg = blocks.getContext('2d');
      const img = bg.createImageData(blocks.width, blocks.height);
      crypto.getRandomValues(img.data.subarray(0, Math.min(img.data.length, 65536)));
      for (let k = 65536; k < img.data.length; k += 65536) crypto.getRandomValues(img.data.subarray(k, Math.min(img.data.length, k + 65536)));
      for (let k = 3; k < img.data.length; k += 4) img.data[k] = 255;
      bg.putImageData(img, 0, 0);
      g.imageSmoothingEnabled = false;
      g.drawImage(blocks, 0, 0, width, height);
    }
    frame++;
  };
  draw();
  source.stop = ticker(1000 / fps, draw);
  source.stream = new MediaStream(tracks);
  return source.stream;
}

// ---- the receiver ---------------------------------------------------------------

const receiver = {
  senders: new Map(), // key -> { video: [times], audio: [times], ... }
  cleanups: [],
  clock: [], // recent { contextTime, performanceTime } output timestamps
};

function senderEntry(key) {
  let s = receiver.senders.get(key);
  if (!s) {
    s = { video: [], audio: [], videoFrames: 0, audioTracks: 0, videoTracks: 0 };
    receiver.senders.set(key, s);
  }
  return s;
}

/**
 * The context's latencies and where its output position stands: `renderAheadMs`, how far
 * the context renders ahead of what the device plays (currentTime minus the output
 * timestamp's contextTime), which the conversion below adds to every onset.
 */
function contextFigures(ctx) {
  const ts = ctx.getOutputTimestamp();
  const now = performance.now();
  return {
    state: ctx.state,
    sampleRate: ctx.sampleRate,
    baseLatencyMs: ctx.baseLatency * 1000,
    outputLatencyMs: (ctx.outputLatency || 0) * 1000,
    outputTimestamp: ts.performanceTime > 0,
    renderAheadMs: (ctx.currentTime - ts.contextTime) * 1000 - (now - ts.performanceTime),
  };
}

/** Context time (s) -> the performance.now() time (ms) the output device plays it. */
function playedAt(ctx, contextTime) {
  const ts = ctx.getOutputTimestamp();
  if (ts.performanceTime > 0 && ts.contextTime > 0) return ts.performanceTime + (contextTime - ts.contextTime) * 1000;
  // No output position yet: the time the context renders it, plus its latencies.
  return performance.now() + (contextTime - ctx.currentTime + ctx.baseLatency + (ctx.outputLatency || 0)) * 1000;
}

/** Watches a remote <video> element of sender `key` for flashes. */
export function watchVideo(key, el) {
  if (!('requestVideoFrameCallback' in HTMLVideoElement.prototype)) throw new Error('no requestVideoFrameCallback');
  const s = senderEntry(key);
  s.videoTracks++;
  const c = document.createElement('canvas');
  c.width = 16;
  c.height = 12;
  const g = c.getContext('2d', { willReadFrequently: true });
  let bright = false;
  let stopped = false;
  const onFrame = (now, meta) => {
    if (stopped) return;
    s.videoFrames++;
    g.drawImage(el, 0, 0, 16, 12);
    const d = g.getImageData(0, 0, 16, 12).data;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
    const level = sum / (3 * 16 * 12);
    const isBright = level > 128;
    if (isBright && !bright) {
      s.video.push({ at: meta.expectedDisplayTime, presented: meta.presentationTime, rtp: meta.rtpTimestamp, level });
      if (s.video.length > 600) s.video.shift();
    }
    bright = isBright;
    el.requestVideoFrameCallback(onFrame);
  };
  el.requestVideoFrameCallback(onFrame);
  receiver.cleanups.push(() => (stopped = true));
}

/** Watches a remote audio track of sender `key` for tone onsets. */
export async function watchAudio(key, track) {
  const s = senderEntry(key);
  s.audioTracks++;
  const ctx = getAudioContext();
  await worklet();
  const src = ctx.createMediaStreamSource(new MediaStream([track]));
  const node = new AudioWorkletNode(ctx, 'onset-detector', { numberOfOutputs: 1, outputChannelCount: [1] });
  node.port.onmessage = ({ data }) => {
    const contextTime = data.frame / data.sampleRate;
    s.audio.push({ at: playedAt(ctx, contextTime), contextTime });
    if (s.audio.length > 600) s.audio.shift();
  };
  src.connect(node).connect(ctx.destination);
  receiver.cleanups.push(() => {
    src.disconnect();
    node.disconnect();
  });
}

const LOCAL = '(local)';

/**
 * The instrument without WebRTC: this page's own marker pair played locally (the canvas
 * track in a muted <video>, the WebAudio track into the same detector), under the sender
 * name '(local)'. Its offset is the capture and playout bias of the two media here,
 * without any network, jitter buffer or lip sync.
 */
export async function watchLocal() {
  if (!source.stream || receiver.senders.has(LOCAL)) return;
  const el = document.createElement('video');
  el.muted = true;
  el.autoplay = true;
  el.style.width = '160px';
  el.srcObject = new MediaStream(source.stream.getVideoTracks());
  document.body.appendChild(el);
  el.play().catch(() => {});
  watchVideo(LOCAL, el);
  const [audio] = source.stream.getAudioTracks();
  if (audio) await watchAudio(LOCAL, audio);
}

/** Forgets what was detected so far (the measurement window starts). */
export function resetMarkers() {
  for (const s of receiver.senders.values()) {
    s.video = [];
    s.audio = [];
    s.videoFrames = 0;
  }
  source.marks = [];
}

const median = (xs) => {
  if (!xs.length) return null;
  const v = [...xs].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const quantile = (xs, q) => {
  if (!xs.length) return null;
  const v = [...xs].sort((a, b) => a - b);
  const i = (v.length - 1) * q;
  const lo = Math.floor(i);
  return v[lo] + (v[Math.min(lo + 1, v.length - 1)] - v[lo]) * (i - lo);
};

/**
 * Per sender: each video flash paired with the nearest audio onset within half a period,
 * offsets video minus audio (ms), their median, interquartile range, min and max.
 */
export function markerFigures() {
  const periodMs = source.options?.periodMs ?? 1000;
  const out = [];
  let local = null;
  for (const [key, s] of receiver.senders) {
    const offsets = [];
    for (const v of s.video) {
      let best = null;
      for (const a of s.audio) if (best === null || Math.abs(v.at - a.at) < Math.abs(v.at - best.at)) best = a;
      if (best && Math.abs(v.at - best.at) < periodMs / 2) offsets.push(v.at - best.at);
    }
    (key === LOCAL ? (x) => (local = x) : (x) => out.push(x))({
      sender: key,
      flashes: s.video.length,
      onsets: s.audio.length,
      videoFrames: s.videoFrames,
      pairs: offsets.length,
      offsets: offsets.map((x) => Math.round(x * 10) / 10),
      medianMs: median(offsets),
      iqrMs: offsets.length ? quantile(offsets, 0.75) - quantile(offsets, 0.25) : null,
      minMs: offsets.length ? Math.min(...offsets) : null,
      maxMs: offsets.length ? Math.max(...offsets) : null,
    });
  }
  const ctx = audioContext;
  return {
    senders: out,
    local,
    marks: source.marks.length,
    audioDelayMs: source.options?.audioDelayMs ?? null,
    context: ctx ? contextFigures(ctx) : null,
  };
}

window.markers = { reset: resetMarkers, figures: markerFigures, watchLocal, source, receiver };
