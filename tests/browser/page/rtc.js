// Plain RTCPeerConnection participants for the latency references (no server of ours):
// a direct Chromium-to-Chromium mesh on loopback, and Janus's videoroom, whose signaling
// the test drives from Node while the page only makes offers and answers. Plus the
// receiver figures the latency measurement reads from any inbound-rtp report.
import { markerStream, watchAudio, watchVideo } from './marker.js';

const rtc = {
  stream: null,
  pcs: new Map(), // name -> RTCPeerConnection
  media: [], // remote media elements
  marker: false,
  senderOfMid: new Map(), // connection name -> { mid: sender name } (Janus: one connection for all)
};

/** The inbound-rtp figures the latency measurement compares (cumulative counters). */
export function inboundFigures(r) {
  const pick = [
    'kind',
    'ssrc',
    'mid',
    'packetsReceived',
    'packetsLost',
    'jitter',
    'jitterBufferDelay',
    'jitterBufferEmittedCount',
    'jitterBufferTargetDelay',
    'jitterBufferMinimumDelay',
    'framesReceived',
    'framesDecoded',
    'framesDropped',
    'framesPerSecond',
    'frameWidth',
    'frameHeight',
    'totalDecodeTime',
    'totalProcessingDelay',
    'totalAssemblyTime',
    'framesAssembledFromMultiplePackets',
    'totalInterFrameDelay',
    'totalSquaredInterFrameDelay',
    'freezeCount',
    'nackCount',
    'pliCount',
    'keyFramesDecoded',
    'totalSamplesReceived',
    'concealedSamples',
    'insertedSamplesForDeceleration',
    'removedSamplesForAcceleration',
    'estimatedPlayoutTimestamp',
    'lastPacketReceivedTimestamp',
  ];
  const out = {};
  for (const k of pick) if (r[k] !== undefined) out[k] = r[k];
  return out;
}

/** What a sender's outbound-rtp says about its own pacing. */
export function outboundFigures(r) {
  const out = {};
  for (const k of ['kind', 'ssrc', 'packetsSent', 'totalPacketSendDelay', 'framesEncoded', 'frameWidth', 'framesPerSecond', 'targetBitrate', 'qualityLimitationReason', 'pliCount', 'firCount', 'nackCount', 'retransmittedPacketsSent']) {
    if (r[k] !== undefined) out[k] = r[k];
  }
  return out;
}

/** This page's tracks: the fake devices, or with `marker` (true or markerStream's options) the synthetic marker pair. */
async function getMedia({ audio = true, fps = 15, marker = false } = {}) {
  rtc.marker = !!marker;
  rtc.stream = marker
    ? await markerStream({ audio, fps, ...(typeof marker === 'object' ? marker : {}) })
    : await navigator.mediaDevices.getUserMedia({ audio, video: { width: 640, height: 480, frameRate: fps } });
  return rtc.stream.getTracks().map((t) => t.kind);
}

function vp8First(transceiver) {
  const caps = RTCRtpReceiver.getCapabilities('video');
  const vp8 = caps.codecs.filter((c) => c.mimeType === 'video/VP8');
  const rest = caps.codecs.filter((c) => c.mimeType !== 'video/VP8' && !/rtx|red|ulpfec/i.test(c.mimeType));
  transceiver.setCodecPreferences([...vp8, ...caps.codecs.filter((c) => /rtx/i.test(c.mimeType)), ...rest]);
}

function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => pc.iceGatheringState === 'complete' && resolve();
    pc.addEventListener('icegatheringstatechange', check);
    setTimeout(resolve, 3000);
  });
}

function playRemote(pc, name) {
  pc.addEventListener('track', (e) => {
    const el = document.createElement(e.track.kind);
    el.autoplay = true;
    el.muted = e.track.kind === 'video';
    el.srcObject = e.streams[0] ?? new MediaStream([e.track]);
    document.body.appendChild(el);
    el.play().catch(() => {});
    rtc.media.push(el);
    if (rtc.marker) {
      const sender = rtc.senderOfMid.get(name)?.[e.transceiver.mid] ?? name;
      if (e.track.kind === 'video') {
        el.style.width = '160px';
        watchVideo(sender, el);
      } else watchAudio(sender, e.track).catch((err) => console.error('marker audio', err));
    }
  });
}

/** A send-only connection `name` carrying this page's tracks (one stream: lip sync). */
async function offerSend(name) {
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  rtc.pcs.set(name, pc);
  for (const track of rtc.stream.getTracks()) {
    const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [rtc.stream] });
    if (track.kind === 'video') vp8First(t);
  }
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  return pc.localDescription.sdp;
}

/**
 * Answers a remote offer on a new receive connection `name`; `senderOfMid` names the
 * sender of each m-line's mid where one connection carries several (Janus).
 */
async function answerRecv(name, sdp, senderOfMid = null) {
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  rtc.pcs.set(name, pc);
  if (senderOfMid) rtc.senderOfMid.set(name, senderOfMid);
  playRemote(pc, name);
  await pc.setRemoteDescription({ type: 'offer', sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered(pc);
  return pc.localDescription.sdp;
}

async function setAnswer(name, sdp) {
  await rtc.pcs.get(name).setRemoteDescription({ type: 'answer', sdp });
}

/** Per receiving connection, its inbound-rtp figures; per sending one, outbound-rtp. */
async function figures() {
  const inbound = [];
  const outbound = [];
  for (const [name, pc] of rtc.pcs) {
    for (const r of (await pc.getStats()).values()) {
      if (r.type === 'inbound-rtp') inbound.push({ pc: name, ...inboundFigures(r) });
      if (r.type === 'outbound-rtp') outbound.push({ pc: name, ...outboundFigures(r) });
    }
  }
  return { inbound, outbound };
}

function states() {
  return [...rtc.pcs].map(([name, pc]) => [name, pc.connectionState]);
}

window.rtc = { getMedia, offerSend, answerRecv, setAnswer, figures, states, state: rtc };
