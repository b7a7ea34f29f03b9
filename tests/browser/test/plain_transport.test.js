// Issue 10 (contract sections 1 and 5): plain RTP transports with real ffmpeg and real
// Chromium. ffmpeg sends VP8 + Opus into a room through two comedia plain transports and
// a Chromium participant decodes them; hostile datagrams on those ports (garbage, lying
// RTCP, a second sender taking over) change nothing; a Chromium participant's webcam and
// mic are consumed on plain transports into ffmpeg, and ffprobe finds them in the file.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const dgram = require('node:dgram');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { room, decodingAll, stats, compat } = require('./harness.js');

const FFMPEG = process.env.FFMPEG_BIN || 'ffmpeg';
const FFPROBE = process.env.FFPROBE_BIN || 'ffprobe';
const PLAIN_MIN = 40000;
const PLAIN_MAX = 49999;

const VP8 = {
  mimeType: 'video/VP8',
  clockRate: 90000,
  rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }],
};
const OPUS = { mimeType: 'audio/opus', clockRate: 48000, channels: 2 };

/** Runs ffmpeg; resolves its handle with the collected stderr. */
function ffmpeg(args) {
  const proc = spawn(FFMPEG, ['-hide_banner', '-loglevel', 'info', '-nostdin', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const h = { proc, stderr: '', exited: null };
  proc.stderr.on('data', (d) => (h.stderr = (h.stderr + d).slice(-20000)));
  h.done = new Promise((resolve) =>
    proc.on('exit', (code, signal) => {
      h.exited = { code, signal };
      resolve(h.exited);
    }),
  );
  h.stop = async () => {
    if (!h.exited) {
      proc.kill('SIGTERM');
      await h.done;
    }
  };
  return h;
}

/** A signaling peer (socket.io-client) that acks every `newConsumer` and keeps it. */
async function signalingPeer(server, roomId) {
  const peer = await compat.createPeer(server, roomId, 31);
  const socket = await compat.connectSocket(server, peer.query);
  socket.consumers = [];
  socket.ackConsumers = true;
  socket.on('request', ({ method, data }, ack) => {
    if (method === 'newConsumer') {
      socket.consumers.push({ data, ack });
      if (socket.ackConsumers) ack();
    } else ack();
  });
  await compat.waitNotification(socket, 'roomReady', () => true, 15000);
  return { peer, socket };
}

async function ok(socket, method, data) {
  const { err, res } = await compat.request(socket, method, data, 15000);
  if (err) throw new Error(`${method}: ${JSON.stringify(err)} ${JSON.stringify(res)}`);
  return res;
}

function checkPlainAnswer(t) {
  assert.equal(typeof t.id, 'string');
  assert.equal(t.ip, '127.0.0.1');
  assert.ok(t.port >= PLAIN_MIN && t.port <= PLAIN_MAX, `RTP port in the range: ${JSON.stringify(t)}`);
  assert.ok(t.rtcpPort >= PLAIN_MIN && t.rtcpPort <= PLAIN_MAX, `RTCP port in the range: ${JSON.stringify(t)}`);
  assert.notEqual(t.port, t.rtcpPort, 'no rtcp-mux: two ports');
}

/**
 * Datagrams the plain transports dropped because they came from another address than
 * their remote one, from `GET /meetmedia/api/stats` and from `/metrics` (the workers
 * publish once a second).
 */
async function wrongSourceTotal(server) {
  const s = (await compat.api(server, 'GET', '/meetmedia/api/stats')).json;
  let stats = 0;
  for (const room of s.rooms) {
    for (const p of room.peers) {
      for (const t of p.transports) if (t.kind === 'plain') stats += t.wrongSourcePackets || 0;
    }
  }
  const text = (await compat.api(server, 'GET', '/metrics')).text;
  let metrics = 0;
  for (const m of text.matchAll(/^kolabmeet_packets_dropped_total\{[^}]*reason="wrong_source"[^}]*\} ([0-9.e+]+)$/gm)) metrics += Number(m[1]);
  return { stats, metrics };
}

function send(sock, bytes, port) {
  return new Promise((resolve) => sock.send(bytes, port, '127.0.0.1', () => resolve()));
}

function rtpPacket(seq, ssrc, pt, payload) {
  const b = Buffer.alloc(12 + payload.length);
  b[0] = 0x80;
  b[1] = pt;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE((seq * 6000) >>> 0, 4);
  b.writeUInt32BE(ssrc >>> 0, 8);
  payload.copy(b, 12);
  return b;
}

test('ffmpeg sends VP8 + Opus through comedia plain transports; Chromium decodes; hostile input is dropped', { timeout: 180000 }, async (t) => {
  const r = await room(1, { webcam: false, mic: false });
  let ff;
  const hostile = [];
  try {
    const sender = await signalingPeer(r.server, r.roomId);
    await ok(sender.socket, 'join', { nickname: 'ffmpeg' });
    const vt = await ok(sender.socket, 'createPlainTransport', { producing: true, consuming: false });
    const at = await ok(sender.socket, 'createPlainTransport', { producing: true, consuming: false });
    checkPlainAnswer(vt);
    checkPlainAnswer(at);
    await ok(sender.socket, 'produce', {
      transportId: vt.id,
      kind: 'video',
      rtpParameters: { codecs: [{ ...VP8, payloadType: 101 }], encodings: [{ ssrc: 22222222 }], rtcp: { cname: 'ffmpeg' } },
      appData: { source: 'webcam' },
    });
    await ok(sender.socket, 'produce', {
      transportId: at.id,
      kind: 'audio',
      rtpParameters: { codecs: [{ ...OPUS, payloadType: 100 }], encodings: [{ ssrc: 11111111 }], rtcp: { cname: 'ffmpeg' } },
      appData: { source: 'mic' },
    });
    ff = ffmpeg([
      '-re', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=15',
      '-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-map', '0:v', '-c:v', 'libvpx', '-b:v', '300k', '-deadline', 'realtime', '-cpu-used', '8', '-g', '15',
      '-ssrc', '22222222', '-payload_type', '101', '-f', 'rtp', `rtp://127.0.0.1:${vt.port}?rtcpport=${vt.rtcpPort}&pkt_size=1200`,
      '-map', '1:a', '-c:a', 'libopus', '-ac', '2', '-ar', '48000',
      '-ssrc', '11111111', '-payload_type', '100', '-f', 'rtp', `rtp://127.0.0.1:${at.port}?rtcpport=${at.rtcpPort}&pkt_size=1200`,
    ]);
    const page = r.pages[0];
    await decodingAll(page, { videos: 1, audios: 1, ms: 60000 });

    // Hostile input: garbage on all four ports, a second sender with ffmpeg's SSRC and
    // payload type on the RTP ports (a takeover attempt), lying RTCP (wrong SSRCs,
    // absurd report blocks, bad lengths) on the RTCP ports.
    for (let i = 0; i < 2; i++) {
      const s = dgram.createSocket('udp4');
      await new Promise((res) => s.bind(0, '127.0.0.1', res));
      hostile.push(s);
    }
    const before = await wrongSourceTotal(r.server);
    const lie = Buffer.from([0x81, 201, 0, 7, 0xde, 0xad, 0xbe, 0xef, 0x0b, 0xad, 0xf0, 0x0d, ...Array(20).fill(0xff)]);
    const badLen = Buffer.from([0x80, 200, 0xff, 0xff, 1, 2, 3, 4]);
    const pli = Buffer.from([0x81, 206, 0, 2, 0, 0, 0, 1, 0x01, 0x53, 0x15, 0x8e]);
    for (let i = 0; i < 200; i++) {
      const [a, b] = hostile;
      await send(a, Buffer.from(Array.from({ length: 1 + (i % 300) }, (_, k) => (k * 37 + i) & 0xff)), [vt.port, vt.rtcpPort, at.port, at.rtcpPort][i % 4]);
      await send(b, rtpPacket(i, 22222222, 101, Buffer.alloc(100, 0x10)), vt.port);
      await send(b, rtpPacket(i, 11111111, 100, Buffer.alloc(60, 0xfc)), at.port);
      await send(b, [lie, badLen, pli][i % 3], [vt.rtcpPort, at.rtcpPort][i % 2]);
    }
    // The server is alive, and still forwards ffmpeg's media to the page.
    assert.equal(await (await fetch(`${r.server.base}/ping`)).text(), 'PONG');
    await decodingAll(page, { videos: 1, audios: 1, ms: 30000 });
    const s = await stats(page);
    const video = s.find((c) => c.kind === 'video');
    assert.ok(video.frameWidth === 320 && video.frameHeight === 240, `ffmpeg's picture: ${JSON.stringify(video)}`);
    // The second sender's 400 RTP packets went to RTP ports whose sender comedia had
    // learnt from ffmpeg: each one dropped and counted, in the stats and in /metrics.
    let dropped;
    await compat.eventually(
      async () => {
        dropped = await wrongSourceTotal(r.server);
        return dropped.stats >= before.stats + 400 && dropped.metrics >= before.metrics + 400;
      },
      15000,
      'the second sender\'s drops counted',
    ).catch((e) => {
      throw new Error(`${e.message}: before ${JSON.stringify(before)}, now ${JSON.stringify(dropped)}`);
    });
    t.diagnostic(`decoding ${JSON.stringify(s)}; datagrams from another address dropped: ${JSON.stringify(dropped)} (before: ${JSON.stringify(before)})`);
    assert.equal(r.server.exited, null, 'the server did not exit');
    assert.ok(!/panick/i.test(r.server.stderr + r.server.stdout), 'no panic');
  } finally {
    for (const s of hostile) s.close();
    if (ff) await ff.stop();
    await r.close();
  }
});

/** The SDP ffmpeg reads a consumer's RTP with (one m-line; RTCP on the next port). */
function sdpOf(consumer, port) {
  const p = consumer.rtpParameters;
  const codec = p.codecs[0];
  const [, name] = codec.mimeType.split('/');
  const kind = consumer.kind;
  const rtpmap = kind === 'audio' ? `${name}/${codec.clockRate}/${codec.channels || 2}` : `${name}/${codec.clockRate}`;
  return [
    'v=0',
    'o=- 0 0 IN IP4 127.0.0.1',
    's=kolabmeet',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=${kind} ${port} RTP/AVP ${codec.payloadType}`,
    `a=rtpmap:${codec.payloadType} ${rtpmap}`,
    `a=rtcp:${port + 1}`,
    'a=recvonly',
    '',
  ].join('\r\n');
}

async function freeEvenPort() {
  for (;;) {
    const p = await compat.freePort();
    const port = p - (p % 2);
    const ok = await Promise.all([port, port + 1].map((x) => new Promise((res) => {
      const s = dgram.createSocket('udp4');
      s.once('error', () => res(false));
      s.bind(x, '127.0.0.1', () => s.close(() => res(true)));
    })));
    if (ok.every(Boolean)) return port;
  }
}

test('a Chromium participant is recorded by ffmpeg through plain transports', { timeout: 180000 }, async (t) => {
  const r = await room(1);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kolabmeet-plain-'));
  const recorders = [];
  try {
    // Chromium sends (its webcam and mic).
    const page = r.pages[0];
    await compat.eventually(async () => (await page.evaluate(() => window.kolab.rtcpStats())).producers.length >= 2, 30000, 'the page producing');
    const out = {};
    for (const [kind, codec] of [['video', { ...VP8, preferredPayloadType: 96, kind: 'video' }], ['audio', { ...OPUS, preferredPayloadType: 100, kind: 'audio' }]]) {
      // One recorder peer per kind (ffmpeg reads one stream per port).
      const rec = await signalingPeer(r.server, r.roomId);
      rec.socket.ackConsumers = false;
      const pt = await ok(rec.socket, 'createPlainTransport', { producing: false, consuming: true });
      checkPlainAnswer(pt);
      const port = await freeEvenPort();
      await ok(rec.socket, 'connectPlainTransport', { transportId: pt.id, ip: '127.0.0.1', port, rtcpPort: port + 1 });
      await ok(rec.socket, 'join', { nickname: `rec-${kind}`, rtpCapabilities: { codecs: [codec], headerExtensions: [] } });
      await compat.eventually(() => rec.socket.consumers.length >= 1, 20000, `a ${kind} consumer for the recorder`);
      assert.equal(rec.socket.consumers.length, 1, 'only the kind it can receive');
      const c = rec.socket.consumers[0];
      assert.equal(c.data.kind, kind);
      const sdp = path.join(dir, `${kind}.sdp`);
      fs.writeFileSync(sdp, sdpOf(c.data, port));
      out[kind] = path.join(dir, `${kind}.mkv`);
      const ff = ffmpeg(['-protocol_whitelist', 'file,udp,rtp', '-i', sdp, '-t', '8', '-c', 'copy', '-y', out[kind]]);
      recorders.push(ff);
      rec.ff = ff;
      rec.consumer = c;
      recorders[kind] = rec;
    }
    // ffmpeg listens: resume (ack) the consumers; resuming asks Chromium for a key frame.
    await compat.sleep(1500);
    for (const kind of ['video', 'audio']) recorders[kind].consumer.ack();
    for (const kind of ['video', 'audio']) {
      const { ff } = recorders[kind];
      const end = Date.now() + 60000;
      while (!ff.exited && Date.now() < end) await compat.sleep(250);
      assert.ok(ff.exited, `ffmpeg ${kind} finished: ${ff.stderr.slice(-2000)}`);
      assert.equal(ff.exited.code, 0, ff.stderr.slice(-2000));
    }
    const probe = (file) =>
      JSON.parse(execFileSync(FFPROBE, ['-v', 'error', '-count_packets', '-show_streams', '-show_format', '-of', 'json', file]).toString());
    const v = probe(out.video);
    const vs = v.streams.find((s) => s.codec_type === 'video');
    assert.ok(vs, JSON.stringify(v));
    assert.equal(vs.codec_name, 'vp8');
    assert.ok(Number(vs.nb_read_packets) >= 8 * 10, `video frames over 8 s: ${vs.nb_read_packets}`);
    assert.ok(Math.abs(Number(v.format.duration) - 8) <= 1.5, `video duration ${v.format.duration}`);
    t.diagnostic(`video: ${vs.nb_read_packets} frames, ${v.format.duration} s, ${vs.width}x${vs.height}`);
    const a = probe(out.audio);
    const as = a.streams.find((s) => s.codec_type === 'audio');
    assert.ok(as, JSON.stringify(a));
    assert.equal(as.codec_name, 'opus');
    assert.ok(Number(as.nb_read_packets) >= 8 * 40, `audio packets (20 ms) over 8 s: ${as.nb_read_packets}`);
    assert.ok(Math.abs(Number(a.format.duration) - 8) <= 1.5, `audio duration ${a.format.duration}`);
    t.diagnostic(`audio: ${as.nb_read_packets} packets, ${a.format.duration} s`);
  } finally {
    for (const ff of recorders) await ff.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    await r.close();
  }
});
