// The Kolab client's media flow, reduced to what the browser suite drives: socket.io-client
// v4 over WebSocket for signaling, mediasoup-client v3 for media. Bundled by esbuild into
// page/bundle.js; the test calls `window.kolab.start(options)` and reads `window.kolab.stats()`.
import { Device } from 'mediasoup-client';
import { io } from 'socket.io-client';
import { inboundFigures, outboundFigures } from './rtc.js';
import { markerStream, watchAudio, watchVideo } from './marker.js';

const state = {
  socket: null,
  device: null,
  sendTransport: null,
  recvTransport: null,
  producers: new Map(), // source -> Producer
  consumers: new Map(), // id -> { consumer, peerId, source, kind, el }
  closedConsumers: [],
  notifications: [],
  log: [],
  options: null,
  iceServers: null,
  started: false,
  // Media restarts done after a second `roomReady` (see `restart`).
  restarts: 0,
  restarting: Promise.resolve(),
};

function log(...args) {
  state.log.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
}

function request(method, data) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${method}`)), 20000);
    state.socket.emit('request', { method, data }, (err, res) => {
      clearTimeout(timer);
      if (err) reject(new Error(`${method} failed: ${err} ${res}`));
      else resolve(res);
    });
  });
}

function wireTransport(transport) {
  transport.on('connect', ({ dtlsParameters }, callback, errback) => {
    request('connectWebRtcTransport', { transportId: transport.id, dtlsParameters }).then(callback, errback);
  });
  transport.on('connectionstatechange', (s) => log('transport', transport.direction, s));
}

function dropConsumer(id) {
  const c = state.consumers.get(id);
  if (!c) return;
  c.consumer.close();
  c.el?.remove();
  state.consumers.delete(id);
  state.closedConsumers.push(id);
}

async function start(options) {
  const { base, query } = options;
  state.options = options;
  const socket = io(base, { path: '/meetmedia/signaling', transports: ['websocket'], query, reconnection: false });
  state.socket = socket;
  const ready = new Promise((resolve, reject) => {
    socket.on('notification', (n) => {
      state.notifications.push(n);
      if (n.method === 'roomReady') {
        // A second `roomReady` on a running session: the server lost this room's media
        // (its media worker failed) and asks the client to set everything up again.
        if (state.started) state.restarting = state.restarting.then(() => restart(n.data));
        else resolve(n.data);
      }
      if (n.method === 'consumerClosed') dropConsumer(n.data.consumerId);
      if (n.method === 'consumerPaused') state.consumers.get(n.data.consumerId)?.consumer.pause();
      if (n.method === 'consumerResumed') state.consumers.get(n.data.consumerId)?.consumer.resume();
    });
    socket.on('connect_error', (e) => reject(e));
  });
  socket.on('request', async ({ method, data }, ack) => {
    if (method !== 'newConsumer') return ack(400, `unknown ${method}`);
    try {
      const consumer = await state.recvTransport.consume({
        id: data.id,
        producerId: data.producerId,
        kind: data.kind,
        rtpParameters: data.rtpParameters,
      });
      // Like the Kolab client: every remote track plays in a media element (Chromium plays
      // out and counts remote audio only then).
      const el = document.createElement(data.kind);
      el.autoplay = true;
      el.muted = data.kind === 'video';
      el.srcObject = new MediaStream([consumer.track]);
      document.body.appendChild(el);
      el.play().catch(() => {});
      // `marker`: find the synthetic markers as played, per sending peer. (Chromium syncs
      // the two by the SDP stream mediasoup-client gives both consumers of a peer, the
      // producer's msid or CNAME, not by these per-track MediaStreams.)
      if (state.options.marker) {
        if (data.kind === 'video') {
          el.style.width = '160px';
          watchVideo(data.peerId, el);
        } else watchAudio(data.peerId, consumer.track).catch((e) => log('marker audio', String(e)));
      }
      state.consumers.set(data.id, { consumer, peerId: data.peerId, source: data.appData?.source, kind: data.kind, type: data.type, el });
      ack();
    } catch (e) {
      log('consume failed', String(e));
      ack(500, String(e));
    }
  });
  const { iceServers } = await ready;
  state.iceServers = iceServers;
  const ids = await setUp();
  state.started = true;
  return ids;
}

/**
 * The Kolab client's flow after `roomReady`: load the device, create both transports,
 * join, then produce webcam and microphone.
 */
async function setUp() {
  const { nickname, forceTcp = false, relayOnly = false, simulcast = true, svc = null, svcMaxBitrate = 1200000, topMaxBitrate = 800000, mic = true, webcam = true, fps = 15, width = 640, height = 480 } = state.options;
  const iceServers = state.iceServers;
  const device = new Device();
  state.device = device;
  await device.load({ routerRtpCapabilities: await request('getRouterRtpCapabilities') });
  const policy = relayOnly ? 'relay' : 'all';
  const sendInfo = await request('createWebRtcTransport', { forceTcp, producing: true, consuming: false });
  state.sendTransport = device.createSendTransport({ ...sendInfo, iceServers: iceServers ?? [], iceTransportPolicy: policy });
  wireTransport(state.sendTransport);
  state.sendTransport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
    request('produce', { transportId: state.sendTransport.id, kind, rtpParameters, appData }).then(({ id }) => callback({ id }), errback);
  });
  const recvInfo = await request('createWebRtcTransport', { forceTcp, producing: false, consuming: true });
  state.recvTransport = device.createRecvTransport({ ...recvInfo, iceServers: iceServers ?? [], iceTransportPolicy: policy });
  wireTransport(state.recvTransport);
  await request('join', { nickname, rtpCapabilities: device.rtpCapabilities });
  if (mic || webcam) {
    // `marker` (true or markerStream's options): the synthetic marker pair instead of the
    // fake devices (mediasoup-client sends both producers in one stream, one CNAME).
    const { marker } = state.options;
    const stream = marker
      ? await markerStream({ audio: mic, fps, width, height, ...(typeof marker === 'object' ? marker : {}) })
      : await navigator.mediaDevices.getUserMedia({ audio: mic, video: webcam ? { width, height, frameRate: fps } : false });
    if (webcam) {
      // `svc` (a scalability mode such as 'L3T3_KEY'): one VP9 encoding with spatial and
      // temporal layers instead of simulcast. `topMaxBitrate`: the top simulcast
      // encoding's cap (the Kolab client's 800 kbit/s unless a test wants a bigger layer).
      const codec = svc ? device.rtpCapabilities.codecs.find((c) => c.mimeType.toLowerCase() === 'video/vp9') : undefined;
      const encodings = svc
        ? [{ scalabilityMode: svc, maxBitrate: svcMaxBitrate }]
        : simulcast
          ? [{ scaleResolutionDownBy: 2, maxBitrate: 250000 }, { scaleResolutionDownBy: 1, maxBitrate: topMaxBitrate }]
          : undefined;
      state.producers.set('webcam', await state.sendTransport.produce({ track: stream.getVideoTracks()[0], encodings, codec, appData: { source: 'webcam' } }));
    }
    if (mic) {
      state.producers.set('mic', await state.sendTransport.produce({ track: stream.getAudioTracks()[0], appData: { source: 'mic' } }));
    }
  }
  return { sendTransport: state.sendTransport.id, recvTransport: state.recvTransport.id };
}

/**
 * What a client must do on a second `roomReady` (the server's media worker for this room
 * failed; nothing of the old transports exists any more, and ICE restarts cannot help
 * because their DTLS state is gone): drop every transport, producer and consumer, and
 * run the whole flow again on the same signaling socket. (The unchanged Kolab client
 * runs its join flow again but keeps its old sending transport and does not produce
 * again; this is the change it would need.)
 */
async function restart({ iceServers }) {
  log('roomReady again: restarting media');
  state.iceServers = iceServers;
  for (const id of [...state.consumers.keys()]) dropConsumer(id);
  state.sendTransport?.close();
  state.recvTransport?.close();
  state.producers.clear();
  try {
    await setUp();
    state.restarts += 1;
    log('media restarted');
  } catch (e) {
    log('restart failed', String(e));
  }
}

async function shareScreen() {
  // With --use-fake-ui-for-media-stream Chromium picks a screen without asking.
  const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  const producer = await state.sendTransport.produce({ track: stream.getVideoTracks()[0], appData: { source: 'screen' } });
  state.producers.set('screen', producer);
  return producer.id;
}

/** Stops the screen share: its track, its producer, and the server's (`closeProducer`). */
async function stopScreen() {
  const p = state.producers.get('screen');
  if (!p) return;
  p.track?.stop();
  p.close();
  state.producers.delete('screen');
  await request('closeProducer', { producerId: p.id });
}

async function setPaused(source, paused) {
  const p = state.producers.get(source);
  if (paused) p.pause();
  else p.resume();
  await request(paused ? 'pauseProducer' : 'resumeProducer', { producerId: p.id });
}

/** Limits the webcam's simulcast to encodings 0..=layer (mediasoup-client setMaxSpatialLayer). */
async function setMaxSpatialLayer(layer) {
  await state.producers.get('webcam').setMaxSpatialLayer(layer);
}

/** Caps what the webcam's encoder may send (an SVC encoder then drops its top spatial layers). */
async function setVideoMaxBitrate(bps) {
  const sender = state.producers.get('webcam').rtpSender;
  const params = sender.getParameters();
  for (const e of params.encodings) e.maxBitrate = bps;
  await sender.setParameters(params);
}

async function restartIce() {
  for (const t of [state.sendTransport, state.recvTransport]) {
    const iceParameters = await request('restartIce', { transportId: t.id });
    await t.restartIce({ iceParameters });
  }
}

/** Per consumer: what its receiver decoded so far. */
async function stats() {
  const out = [];
  for (const [id, { consumer, peerId, source, kind }] of state.consumers) {
    const report = await consumer.getStats();
    let s = { id, peerId, source, kind, paused: consumer.paused };
    for (const r of report.values()) {
      if (r.type !== 'inbound-rtp') continue;
      s = {
        ...s,
        packetsReceived: r.packetsReceived ?? 0,
        framesDecoded: r.framesDecoded ?? 0,
        frameWidth: r.frameWidth ?? 0,
        frameHeight: r.frameHeight ?? 0,
        totalSamplesReceived: r.totalSamplesReceived ?? 0,
        decoderErrors: (r.framesDropped ?? 0),
        pliCount: r.pliCount ?? 0,
        freezeCount: r.freezeCount ?? 0,
        totalFreezesDuration: r.totalFreezesDuration ?? 0,
        concealedSamples: r.concealedSamples ?? 0,
        packetsLost: r.packetsLost ?? 0,
        nackCount: r.nackCount ?? 0,
        fecPacketsReceived: r.fecPacketsReceived ?? 0,
        bytesReceived: r.bytesReceived ?? 0,
        jitter: r.jitter ?? 0,
      };
    }
    out.push(s);
  }
  return out;
}

async function transportStats() {
  const out = {};
  for (const t of [state.sendTransport, state.recvTransport]) {
    const report = await t.getStats();
    // The pair in use: the one the transport report selected.
    const transport = [...report.values()].find((r) => r.type === 'transport' && r.selectedCandidatePairId);
    const pair = transport && report.get(transport.selectedCandidatePairId);
    if (pair) {
      const local = report.get(pair.localCandidateId);
      out[t.direction] = {
        localType: local?.candidateType,
        protocol: local?.protocol,
        relayProtocol: local?.relayProtocol,
        availableOutgoingBitrate: pair.availableOutgoingBitrate,
        srtpCipher: transport.srtpCipher,
        dtlsCipher: transport.dtlsCipher,
        dtlsRole: transport.dtlsRole,
      };
    }
  }
  return out;
}

/**
 * What the server's RTCP told this browser: per producer, the `remote-inbound-rtp` stats
 * that Chromium builds from the server's receiver reports (round-trip time from LSR/DLSR,
 * losses); per consumer, the `remote-outbound-rtp` stats it builds from the server's
 * sender reports, next to what it received.
 */
async function rtcpStats() {
  const producers = [];
  for (const [source, p] of state.producers) {
    for (const r of (await p.getStats()).values()) {
      if (r.type !== 'remote-inbound-rtp') continue;
      producers.push({
        source,
        kind: r.kind,
        ssrc: r.ssrc,
        roundTripTime: r.roundTripTime,
        rttMeasurements: r.roundTripTimeMeasurements ?? 0,
        packetsLost: r.packetsLost,
      });
    }
  }
  const consumers = [];
  for (const [id, { consumer, kind }] of state.consumers) {
    const report = await consumer.getStats();
    const inbound = [...report.values()].find((r) => r.type === 'inbound-rtp');
    for (const r of report.values()) {
      if (r.type !== 'remote-outbound-rtp') continue;
      consumers.push({
        id,
        kind,
        packetsSent: r.packetsSent,
        reportsSent: r.reportsSent,
        // The NTP time of the last sender report (ms since the Unix epoch) and when the
        // stats were taken on this machine's clock.
        remoteTimestamp: r.remoteTimestamp,
        timestamp: r.timestamp,
        packetsReceived: inbound?.packetsReceived ?? 0,
      });
    }
  }
  return { producers, consumers };
}

/**
 * For the latency measurement: per consumer its inbound-rtp figures (jitter buffer,
 * jitter, frames), per producer its outbound-rtp ones (pacing), as cumulative counters.
 */
async function latencyFigures() {
  const inbound = [];
  for (const [id, { consumer, peerId, kind }] of state.consumers) {
    for (const r of (await consumer.getStats()).values()) {
      if (r.type === 'inbound-rtp') inbound.push({ pc: `${peerId}/${kind}`, consumer: id, ...inboundFigures(r) });
    }
  }
  const outbound = [];
  for (const [source, p] of state.producers) {
    for (const r of (await p.getStats()).values()) {
      if (r.type === 'outbound-rtp') outbound.push({ pc: source, ...outboundFigures(r) });
    }
  }
  return { inbound, outbound };
}

function leave() {
  state.socket.disconnect();
  state.sendTransport?.close();
  state.recvTransport?.close();
}

window.kolab = {
  start, stats, rtcpStats, latencyFigures, transportStats, shareScreen, stopScreen, setPaused, setMaxSpatialLayer, setVideoMaxBitrate, restartIce, leave, state,
  log: () => state.log,
  restarts: () => state.restarts,
};
