// Issue 9 with real Chromium on shaped links: each participant's browser runs in a
// network namespace of its own, joined to the server by a veth pair that this test
// creates (and removes): `tc tbf` caps a participant's downlink (on the server's side of
// its pair) or uplink (on its own side), nftables `numgen random` drops a share of its
// packets. The server (root namespace) announces an address on `lo` that only these
// namespaces route to. One publisher A sends the Kolab client's two simulcast encodings
// (320x240 at up to 250 kbit/s, 640x480 at up to 800 kbit/s) and Opus; B and C receive.
// A cap is a token bucket of 2 KB (just over one packet), as a rate-limited link is: a
// larger bucket lets a short probe through at full speed and misleads the estimate.
// What is asserted comes from the receivers' getStats() and the server's events.
//
// Needs root (namespaces, tc, nftables). Without it the test says so and is skipped.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const dgram = require('node:dgram');
const { compat, pageServer, launch, stats, consoleLine } = require('./harness.js');

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ID = process.pid % 10000;
const SERVER_IP = `10.${200 + (ID % 50)}.0.1`;
// Where the jitter relay listens (also on lo), for the scenario that announces it.
const RELAY_IP = `10.${200 + (ID % 50)}.0.2`;
const net = (n) => `10.${200 + (ID % 50)}.${n}`;
const NS = (n) => `km${ID}p${n}`;
const HOST_IF = (n) => `km${ID}h${n}`;
const PEER_IF = (n) => `km${ID}v${n}`;
const NFT_TABLE = `km${ID}loss`;
// B's cap in the SVC scenario: between what 640x360 and what 1280x720 need.
const SVC_CAP_KBIT = 700;

const sh = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const quiet = (cmd, args) => {
  try {
    sh(cmd, args);
  } catch {
    /* already gone */
  }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The server's view of participant `peerId`'s video consumer (layers, allocation). */
async function serverVideoConsumer(server, peerId) {
  const all = JSON.parse(await consoleLine(server, 'statsTransport').catch(() => '[]') || '[]');
  return all.find((x) => x.peerId === peerId)?.consumers.find((c) => c.kind === 'video');
}

/** The server's view of participant `peerId`'s receiving transport (estimate, layers). */
async function serverView(server, peerId) {
  const all = JSON.parse(await consoleLine(server, 'statsTransport').catch(() => '[]') || '[]');
  const t = all.find((x) => x.peerId === peerId);
  if (!t) return 'no transport';
  const v = t.consumers.find((c) => c.kind === 'video');
  return `estimate ${Math.round(t.estimateBps / 1000)} kbit/s (acked ${Math.round((t.ackedBps ?? 0) / 1000)}, loss ${(t.loss * 100).toFixed(1)} %, ${t.delayTrend}); video layer ${v?.currentLayer}/${v?.currentTemporalLayer} target ${v?.targetLayer} ${v?.allocation}`;
}

function canShape() {
  if (process.getuid?.() !== 0) return 'not root';
  for (const bin of ['ip', 'tc', 'nft']) {
    try {
      sh('sh', ['-c', `command -v ${bin}`]);
    } catch {
      return `${bin} is missing`;
    }
  }
  // A kernel or container that refuses namespaces (no CAP_NET_ADMIN) says so here.
  try {
    sh('ip', ['netns', 'add', `km${ID}probe`]);
    sh('ip', ['netns', 'del', `km${ID}probe`]);
  } catch (e) {
    return `network namespaces (${String(e.stderr || e.message).trim()})`;
  }
  return null;
}

/** Namespaces 1..n, each with a veth pair to the root namespace; the server's address on lo. */
function setUpNetwork(n) {
  sh('ip', ['addr', 'add', `${SERVER_IP}/32`, 'dev', 'lo']);
  sh('ip', ['addr', 'add', `${RELAY_IP}/32`, 'dev', 'lo']);
  for (let i = 1; i <= n; i++) {
    sh('ip', ['netns', 'add', NS(i)]);
    sh('ip', ['link', 'add', HOST_IF(i), 'type', 'veth', 'peer', 'name', PEER_IF(i)]);
    sh('ip', ['link', 'set', PEER_IF(i), 'netns', NS(i)]);
    sh('ip', ['addr', 'add', `${net(i)}.1/24`, 'dev', HOST_IF(i)]);
    sh('ip', ['link', 'set', HOST_IF(i), 'up']);
    const inNs = (...args) => sh('ip', ['netns', 'exec', NS(i), ...args]);
    inNs('ip', 'addr', 'add', `${net(i)}.2/24`, 'dev', PEER_IF(i));
    inNs('ip', 'link', 'set', PEER_IF(i), 'up');
    inNs('ip', 'link', 'set', 'lo', 'up');
    inNs('ip', 'route', 'add', 'default', 'via', `${net(i)}.1`);
  }
}

function tearDownNetwork(n) {
  quiet('nft', ['delete', 'table', 'inet', NFT_TABLE]);
  for (let i = 1; i <= n; i++) {
    quiet('ip', ['link', 'del', HOST_IF(i)]);
    quiet('ip', ['netns', 'del', NS(i)]);
  }
  quiet('ip', ['addr', 'del', `${SERVER_IP}/32`, 'dev', 'lo']);
  quiet('ip', ['addr', 'del', `${RELAY_IP}/32`, 'dev', 'lo']);
}

/**
 * Caps participant i's downlink (what the server sends it) at `kbit`, or lifts it (null):
 * a token bucket of `burst` (tc units: `2kb` is 2 KiB) in front of a drop-tail queue of
 * `latency`.
 */
function capDownlink(i, kbit, { burst = '2kb', latency = '100ms' } = {}) {
  quiet('tc', ['qdisc', 'del', 'dev', HOST_IF(i), 'root']);
  if (kbit) sh('tc', ['qdisc', 'add', 'dev', HOST_IF(i), 'root', 'tbf', 'rate', `${kbit}kbit`, 'burst', burst, 'latency', latency]);
}

/** Caps participant i's uplink (what it sends) at `kbit`, or lifts it (null). */
function capUplink(i, kbit) {
  quiet('ip', ['netns', 'exec', NS(i), 'tc', 'qdisc', 'del', 'dev', PEER_IF(i), 'root']);
  if (kbit) {
    sh('ip', ['netns', 'exec', NS(i), 'tc', 'qdisc', 'add', 'dev', PEER_IF(i), 'root', 'tbf', 'rate', `${kbit}kbit`, 'burst', '2kb', 'latency', '100ms']);
  }
}

/**
 * Drops `percent` % of the UDP packets the server sends participant i, at random, as they
 * arrive in the participant's namespace (prerouting there): a loss on the path. (A drop
 * in the server's own output path is not one: the kernel answers the server's send with
 * EPERM, which a sender sees.) Returns the packets dropped so far by the previous rule.
 */
function loseDownlink(i, percent) {
  const inNs = (...args) => sh('ip', ['netns', 'exec', NS(i), 'nft', ...args]);
  let dropped = 0;
  try {
    const listed = inNs('list', 'table', 'inet', NFT_TABLE);
    dropped = Number(/packets (\d+)/.exec(listed)?.[1] ?? 0);
    inNs('delete', 'table', 'inet', NFT_TABLE);
  } catch {
    /* no rule yet */
  }
  if (!percent) return dropped;
  inNs('add', 'table', 'inet', NFT_TABLE);
  inNs('add', 'chain', 'inet', NFT_TABLE, 'in', '{ type filter hook prerouting priority 0 ; }');
  inNs('add', 'rule', 'inet', NFT_TABLE, 'in', 'iifname', PEER_IF(i), 'meta', 'l4proto', 'udp', 'numgen', 'random', 'mod', '100', '<', String(percent), 'counter', 'drop');
  return dropped;
}

/** A Chromium that runs in participant i's namespace, `origin` counting as secure
 * (getUserMedia and WebRTC need a secure context; only loopback is one by default). */
async function browserIn(i, dir, origin) {
  const wrapper = path.join(dir, `chromium-${i}`);
  fs.writeFileSync(
    wrapper,
    `#!/bin/sh\nexec ip netns exec ${NS(i)} ${CHROMIUM} --unsafely-treat-insecure-origin-as-secure=${origin} "$@"\n`,
    { mode: 0o755 },
  );
  return launch({ executablePath: wrapper });
}

const videoOf = (s, peerId) => s.find((c) => c.kind === 'video' && c.peerId === peerId);
const audioOf = (s, peerId) => s.find((c) => c.kind === 'audio' && c.peerId === peerId);
const layerEvents = (page) =>
  page.evaluate(() => window.kolab.state.notifications.filter((n) => n.method === 'consumerLayersChanged').map((n) => n.data.layers));

/** How many times the spatial layer changes along `events` (consumerLayersChanged
 * payloads; null is paused, -1), starting from spatial layer `from`. */
function spatialSwitches(events, from) {
  let switches = 0;
  let at = from;
  for (const l of events) {
    const now = l ? l.spatialLayer : -1;
    if (now !== at) switches++;
    at = now;
  }
  return switches;
}

/** The spatial layer the last of `events` left a consumer on (`fallback` when none). */
const lastSpatial = (events, fallback) => (events.length ? (events.at(-1)?.spatialLayer ?? -1) : fallback);

/** Audio concealed between the first and last of `samples`, as a share of the samples. */
function concealedShare(samples) {
  const [a0, a1] = [samples[0].audio, samples.at(-1).audio];
  return (a1.concealedSamples - a0.concealedSamples) / Math.max(1, a1.totalSamplesReceived - a0.totalSamplesReceived);
}

/** Samples `page`'s stats about `peerId` every 500 ms for `ms`; the samples. */
async function sample(page, peerId, ms) {
  const out = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const s = await stats(page);
    out.push({ at: Date.now(), video: videoOf(s, peerId), audio: audioOf(s, peerId) });
    await sleep(500);
  }
  return out;
}

/** Waits until `page` decodes `peerId`'s video at `width`; how long it took, in ms. */
async function untilWidth(page, peerId, width, ms, what) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < ms) {
    last = videoOf(await stats(page), peerId);
    if (last?.frameWidth === width) return Date.now() - t0;
    await sleep(250);
  }
  throw new Error(`${what}: not ${width} wide within ${ms} ms; last ${JSON.stringify(last)}`);
}

/** What `page`'s video encodings send: per encoding its width, frame rate, target bitrate and limitation. */
async function sending(page) {
  const { outbound } = await page.evaluate(() => window.kolab.latencyFigures()).catch(() => ({ outbound: [] }));
  return outbound
    .filter((o) => o.kind === 'video')
    .map((o) => `${o.frameWidth ?? '-'}w ${Math.round(o.framesPerSecond ?? 0)} fps ${Math.round((o.targetBitrate ?? 0) / 1000)} kbit/s (${o.qualityLimitationReason})`)
    .join(', ');
}

/** Every participant's media flows over UDP (what the shaping and loss are about). */
async function assertUdp(pages) {
  for (const page of pages) {
    const t = await page.evaluate(() => window.kolab.transportStats());
    for (const dir of ['send', 'recv']) assert.equal(t[dir]?.protocol, 'udp', `${dir} transport: ${JSON.stringify(t)}`);
  }
}

/** The longest time in `samples` during which no video frame was decoded, in ms. */
/**
 * The longest video freeze Chromium reported (`freezeCount`, `totalFreezesDuration`: a
 * frame that came later than max(3 x the average frame interval, average + 150 ms)) that
 * ended within `samples`, in ms: what ended between two samples 0.5 s apart is counted as
 * one freeze (an upper bound when two end in one interval). This is the measure;
 * `longestStall` is printed beside it (on a loaded machine the page's stats calls
 * themselves can be late, which reads as a stall that Chromium did not see).
 */
function longestFreeze(samples) {
  let longest = 0;
  for (let k = 1; k < samples.length; k++) {
    const [a, b] = [samples[k - 1].video, samples[k].video];
    if (a && b && b.freezeCount > a.freezeCount) {
      longest = Math.max(longest, Math.round((b.totalFreezesDuration - a.totalFreezesDuration) * 1000));
    }
  }
  return longest;
}

function longestStall(samples) {
  let longest = 0;
  let since = samples[0]?.at;
  for (let k = 1; k < samples.length; k++) {
    if ((samples[k].video?.framesDecoded ?? 0) > (samples[k - 1].video?.framesDecoded ?? 0)) {
      since = samples[k].at;
    } else {
      longest = Math.max(longest, samples[k].at - since);
    }
  }
  return longest;
}

// Runs as root (CI is), skipped otherwise with the reason; KOLABMEET_SHAPED=0 skips it.
//   cd tests/browser && node --test test/shaped_links.test.js
const why = process.env.KOLABMEET_SHAPED === '0' ? 'KOLABMEET_SHAPED unset or not 0' : canShape();
const skip = why ? `needs ${why === 'not root' ? 'root' : why}` : false;

/**
 * Three participants, each in its namespace: A publishes a webcam with `publish` (the
 * client's options) and audio, B and C send audio only (their uplinks stay quiet). Runs
 * `scenarios(server, [a, b, c])`, then tears everything down.
 */
async function shapedRoom(publish, scenarios, serverEnv = {}, participants = 3) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kolabmeet-shaped-'));
  tearDownNetwork(3);
  setUpNetwork(3);
  const server = await compat.startServer({
    LISTENING_HOST: '0.0.0.0',
    // The media sockets on the server's own address: bound to 0.0.0.0 they would answer
    // from the address of the interface towards each participant (10.x.i.1), which ICE
    // does not accept as the candidate's, and every browser fell back to ICE-TCP (the
    // tests shaped TCP until 2026-12-07).
    WEBRTC_LISTEN_IP: SERVER_IP,
    WEBRTC_ANNOUNCED_ADDRESS: SERVER_IP,
    LOG_LEVEL: process.env.KOLABMEET_SERVER_LOG_LEVEL ?? 'info',
    ...serverEnv,
  });
  const web = await pageServer('0.0.0.0');
  const browsers = [];
  try {
    const roomId = await compat.createRoom(server);
    const pages = [];
    for (let i = 1; i <= participants; i++) {
      const browser = await browserIn(i, dir, `http://${SERVER_IP}:${web.port}`);
      browsers.push(browser);
      const peer = await compat.createPeer(server, roomId, 31);
      const page = await (await browser.newContext()).newPage();
      page.on('pageerror', (e) => console.error(`page ${i}:`, e));
      await page.goto(`http://${SERVER_IP}:${web.port}/`);
      await page.evaluate((o) => window.kolab.start(o), {
        base: `http://${SERVER_IP}:${server.port}`,
        query: peer.query,
        nickname: `p${i}`,
        ...(i === 1 ? publish : {}),
        webcam: i === 1,
      });
      pages.push(Object.assign(page, { peer }));
    }
    await scenarios(server, pages);
  } finally {
    for (const br of browsers) await br.close().catch(() => {});
    web.close();
    await server.stop();
    // KOLABMEET_SERVER_LOG=file keeps the server's log of the last shaped test (with
    // LOG_LEVEL=trace in it: every transport-cc feedback's estimate, kolabmeet::bwe).
    if (process.env.KOLABMEET_SERVER_LOG) fs.writeFileSync(process.env.KOLABMEET_SERVER_LOG, server.stderr);
    tearDownNetwork(3);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('shaped links: capped, lossy and slow-uplink participants', { skip, timeout: 420000 }, async () => {
  await shapedRoom({ simulcast: true }, async (server, pages) => {
    const [a, b, c] = pages;
    const aId = a.peer.id;
    // Both receivers get the top layer on the open links.
    await untilWidth(b, aId, 640, 45000, 'B, open link');
    await untilWidth(c, aId, 640, 20000, 'C, open link');
    await assertUdp(pages);

    // 1. B's downlink capped at 500 kbit/s: within 5 s B decodes the low layer; over the
    //    next 60 s no stall over 1 s, audio concealed at most 2 % of the time, fewer
    //    than 4 layer switches. C, uncapped, keeps the top layer throughout (3).
    capDownlink(2, 500);
    const watch = setInterval(async () => console.log(`  server, B: ${await serverView(server, b.peer.id)}`), 1000);
    const down = await untilWidth(b, aId, 320, 15000, 'B capped at 500 kbit/s').catch((e) => {
      clearInterval(watch);
      throw e;
    });
    console.log(`B capped at 500 kbit/s: low layer decoded after ${down} ms`);
    const eventsBefore = (await layerEvents(b)).length;
    const [bs, cs] = await Promise.all([sample(b, aId, 60000), sample(c, aId, 60000)]);
    clearInterval(watch);
    const bEvents = (await layerEvents(b)).slice(eventsBefore);
    // Spatial switches within the window: the layer was 0 at its start.
    let spatialSwitches = 0;
    let at = 0;
    for (const l of bEvents) {
      const now = l ? l.spatialLayer : -1;
      if (now !== at) spatialSwitches++;
      at = now;
    }
    const widths = [...new Set(bs.slice(2).map((s) => s.video?.frameWidth))];
    const first = bs[0];
    const last = bs.at(-1);
    const concealed = (last.audio.concealedSamples - first.audio.concealedSamples) / Math.max(1, last.audio.totalSamplesReceived - first.audio.totalSamplesReceived);
    const stall = longestStall(bs);
    const freeze = longestFreeze(bs);
    const freezes = last.video.freezeCount - first.video.freezeCount;
    const cWidths = [...new Set(cs.map((s) => s.video?.frameWidth))];
    console.log(
      `B over 60 s at 500 kbit/s: widths ${JSON.stringify(widths)}, longest freeze ${freeze} ms (between stats samples: ${stall} ms), freezes ${freezes} ` +
        `(${(last.video.totalFreezesDuration - first.video.totalFreezesDuration).toFixed(2)} s), audio concealed ${(concealed * 100).toFixed(2)} %, ` +
        `consumerLayersChanged ${bEvents.length} (spatial switches ${spatialSwitches}: ${JSON.stringify(bEvents)}); C widths ${JSON.stringify(cWidths)}`,
    );
    assert.ok(down <= 5000, `low layer after ${down} ms`);
    assert.ok(freeze <= 1000, `B froze ${freeze} ms`);
    assert.ok(bs.at(-1).video.framesDecoded - bs[0].video.framesDecoded > 200, 'B keeps decoding');
    assert.ok(concealed <= 0.02, `B's audio concealed ${(concealed * 100).toFixed(2)} %`);
    assert.ok(spatialSwitches < 4, `${spatialSwitches} spatial switches in 60 s: ${JSON.stringify(bEvents)}`);
    assert.deepEqual(cWidths, [640], 'C keeps the top layer');

    // 2. The cap lifted: the top layer is back within 15 s.
    capDownlink(2, null);
    const watch2 = setInterval(async () => console.log(`  server, B: ${await serverView(server, b.peer.id)}`), 1000);
    const up = await untilWidth(b, aId, 640, 15000, 'B, cap lifted').catch((e) => {
      clearInterval(watch2);
      throw e;
    });
    console.log(`B cap lifted: top layer after ${up} ms`);

    // 4. 5 % random loss on B's downlink: NACK/RTX keep it at the top layer, with fewer
    //    than one freeze per 10 s. (First 10 s on the open link, then B on the top layer,
    //    so that the loss is what is measured, not the end of the recovery: after a lift
    //    the estimate has been seen to fall back to the low layer for a few seconds,
    //    which issue 17's switch damping is about; the server's view is printed.)
    await sleep(10000);
    const settled = await untilWidth(b, aId, 640, 20000, 'B before the loss').catch((e) => {
      clearInterval(watch2);
      throw e;
    });
    console.log(`B: on the top layer ${settled} ms after the 10 s wait; 5 % loss from now`);
    loseDownlink(2, 5);
    const ls = await sample(b, aId, 30000);
    const droppedOnPath = loseDownlink(2, 0);
    const lossWidths = ls.map((s) => s.video?.frameWidth);
    const topShare = lossWidths.filter((w) => w === 640).length / lossWidths.length;
    const lossFreezes = ls.at(-1).video.freezeCount - ls[0].video.freezeCount;
    const audioFeedback = await b.evaluate(() =>
      [...window.kolab.state.consumers.values()].find((x) => x.kind === 'audio')?.consumer.rtpParameters.codecs[0].rtcpFeedback.map((f) => f.type),
    );
    const audioUnder = (samples, dropped) => {
      const [a0, a1] = [samples[0].audio, samples.at(-1).audio];
      const concealed = (a1.concealedSamples - a0.concealedSamples) / Math.max(1, a1.totalSamplesReceived - a0.totalSamplesReceived);
      const text = `${dropped} packets dropped on the path; audio: ${a1.packetsLost - a0.packetsLost} packets lost after repair, ${a1.nackCount - a0.nackCount} NACKs sent (Opus feedback ${JSON.stringify(audioFeedback)}), concealed ${(concealed * 100).toFixed(2)} % of samples`;
      return { concealed, text };
    };
    const five = audioUnder(ls, droppedOnPath);
    console.log(`B with 5 % loss over 30 s: top layer in ${(topShare * 100).toFixed(0)} % of samples, freezes ${lossFreezes}, longest stall ${longestStall(ls)} ms; ${five.text}`);
    assert.ok(topShare >= 0.9, `top layer in ${(topShare * 100).toFixed(0)} % of the samples`);
    assert.ok(lossFreezes < 3, `${lossFreezes} freezes in 30 s`);
    // Issue 17: audio repaired by NACK (the server offers it for Opus; mediasoup-client
    // announces it on Chromium): concealed under 1.5 % at 5 % loss, under 5 % at 15 %.
    assert.ok(five.concealed < 0.015, `audio concealed ${(five.concealed * 100).toFixed(2)} % at 5 % loss`);
    loseDownlink(2, 15);
    const heavy = await sample(b, aId, 30000);
    clearInterval(watch2);
    const fifteen = audioUnder(heavy, loseDownlink(2, 0));
    const heavyDecoded = heavy.at(-1).video.framesDecoded - heavy[0].video.framesDecoded;
    console.log(`B with 15 % loss over 30 s: ${heavyDecoded} video frames decoded, widths ${JSON.stringify([...new Set(heavy.map((x) => x.video?.frameWidth))])}; ${fifteen.text}`);
    assert.ok(fifteen.concealed < 0.05, `audio concealed ${(fifteen.concealed * 100).toFixed(2)} % at 15 % loss`);
    assert.ok(heavyDecoded > 200, `B decoded ${heavyDecoded} frames at 15 % loss`);

    // 5. A's uplink capped at 300 kbit/s: A's Chromium drops what does not fit, and both
    //    receivers keep decoding the layers that still arrive.
    capUplink(1, 300);
    await sleep(5000);
    const [bu, cu] = await Promise.all([sample(b, aId, 20000), sample(c, aId, 20000)]);
    capUplink(1, null);
    for (const [name, s] of [['B', bu], ['C', cu]]) {
      const stalled = longestStall(s);
      const froze = longestFreeze(s);
      const decoded = s.at(-1).video.framesDecoded - s[0].video.framesDecoded;
      console.log(`${name} with A's uplink at 300 kbit/s: ${decoded} frames in 20 s, widths ${JSON.stringify([...new Set(s.map((x) => x.video?.frameWidth))])}, longest freeze ${froze} ms (between stats samples: ${stalled} ms)`);
      assert.ok(decoded > 100, `${name} decoded ${decoded} frames`);
      // The layer that still arrives needs a key frame, and a request for it within 3 s
      // of the last one for that stream (the 15 % loss step just before asks for some)
      // waits for the end of the producer's keyFrameRequestDelay (3000 ms): 0-1.5 s usually, 2.58 s once in about ten runs (2026-12-07).
      assert.ok(froze <= 3500, `${name} froze ${froze} ms`);
    }
  });
});

// Issue 9, "SVC consumers": a VP9 k-SVC publisher (one encoding, L3T3_KEY: 320x180,
// 640x360 and 1280x720 in one stream), one receiver capped and one not, each decoding
// the spatial layer its link carries; the capped one keeps decoding.
test('shaped links: a VP9 k-SVC publisher, one receiver capped', { skip, timeout: 240000 }, async () => {
  await shapedRoom({ svc: 'L3T3_KEY', width: 1280, height: 720 }, async (server, [a, b, c]) => {
    const aId = a.peer.id;
    const type = await b.evaluate(() => [...window.kolab.state.consumers.values()].find((x) => x.kind === 'video')?.type);
    assert.equal(type, 'svc', 'the consumer of a k-SVC producer is of type svc');
    await untilWidth(b, aId, 1280, 45000, 'B, open link');
    await untilWidth(c, aId, 1280, 20000, 'C, open link');
    await assertUdp([a, b, c]);
    // B's estimate climbs from its start value first (a layer down and up again).
    await sleep(8000);
    await untilWidth(b, aId, 1280, 30000, 'B, settled on the open link');
    capDownlink(2, SVC_CAP_KBIT);
    const watch = setInterval(async () => console.log(`  server, B: ${await serverView(server, b.peer.id)}`), 1000);
    try {
      const t0 = Date.now();
      let lower;
      while (Date.now() - t0 < 15000) {
        lower = videoOf(await stats(b), aId);
        if (lower?.frameWidth && lower.frameWidth < 1280) break;
        await sleep(250);
      }
      const down = Date.now() - t0;
      console.log(`SVC, B capped at ${SVC_CAP_KBIT} kbit/s: ${lower?.frameWidth}x${lower?.frameHeight} after ${down} ms`);
      assert.ok(lower?.frameWidth < 1280, `B still decodes ${lower?.frameWidth} wide`);
      await sleep(3000);
      // C's consumer as the server sees it, once a second: it must stay on the top
      // spatial layer (what C decodes also depends on what A's encoder sends: under CPU
      // load Chromium lowers the resolution of every layer).
      const cLayers = [];
      const cWatch = setInterval(async () => cLayers.push((await serverVideoConsumer(server, c.peer.id))?.currentLayer), 1000);
      const [bs, cs] = await Promise.all([sample(b, aId, 30000), sample(c, aId, 30000)]).finally(() => clearInterval(cWatch));
      const bWidths = [...new Set(bs.map((s) => s.video?.frameWidth))];
      const cWidths = [...new Set(cs.map((s) => s.video?.frameWidth))];
      const decoded = bs.at(-1).video.framesDecoded - bs[0].video.framesDecoded;
      const stall = longestStall(bs);
      const freeze = longestFreeze(bs);
      const freezes = bs.at(-1).video.freezeCount - bs[0].video.freezeCount;
      const events = (await layerEvents(b)).slice(-5);
      const narrower = bs.filter((x, k) => cs[k] && x.video?.frameWidth > cs[k].video?.frameWidth).length;
      console.log(`SVC over 30 s: B widths ${JSON.stringify(bWidths)}, ${decoded} frames, longest freeze ${freeze} ms (between stats samples: ${stall} ms), freezes ${freezes}; C widths ${JSON.stringify(cWidths)}, C's spatial layer at the server ${JSON.stringify([...new Set(cLayers)])} (layer 2 in ${cLayers.filter((l) => l === 2).length} of ${cLayers.length} samples); B's last consumerLayersChanged ${JSON.stringify(events)}`);
      assert.ok(bWidths.every((w) => w < 1280), `B's widths under the cap: ${JSON.stringify(bWidths)}`);
      assert.ok(decoded > 150, `B decoded ${decoded} frames in 30 s`);
      // Issue 17: no freeze over 1 s. Over UDP the capped receiver used to try 640x360
      // once and come back (freezes of 1.6 and 1.7 s in two of five runs on 2026-12-07);
      // an up-switch is now tried with padding before it is made.
      assert.ok(freeze <= 1000, `B froze ${freeze} ms`);
      assert.ok(events.at(-1)?.spatialLayer < 2, `B's layers ${JSON.stringify(events.at(-1))}`);
      // On this 2-core machine three Chromiums encoding and decoding VP9 at 720p load the
      // CPU enough that a receiver's packet timing can read as congestion for a moment
      // (one run in six dropped C to layer 1 for a few seconds): most of the time, not
      // every second.
      const cTop = cLayers.filter((l) => l === 2).length / Math.max(1, cLayers.length);
      assert.ok(cLayers.length >= 20 && cTop >= 0.8, `C's spatial layer at the server: ${JSON.stringify(cLayers)}`);
      assert.ok(cWidths.includes(1280), `C decodes 1280 wide: ${JSON.stringify(cWidths)}`);
      assert.equal(narrower, 0, 'C never decodes narrower than B');
    } finally {
      clearInterval(watch);
    }
    // Lifted: B climbs back to the top spatial layer.
    capDownlink(2, null);
    // Two spatial steps, each up-switch made once it has fitted for 2 s, probes sized to
    // the next step: slower than the simulcast case's one step.
    const up = await untilWidth(b, aId, 1280, 30000, 'B, SVC cap lifted');
    console.log(`SVC, B cap lifted: top spatial layer after ${up} ms`);
  });
});

// Issue 17, bursty shapers: B's downlink capped at 450 kbit/s and C's at 1 Mbit/s by token
// buckets of 2, 15 and 30 KB in front of a 200 ms drop-tail queue (what cable, DSL and
// Wi-Fi shapers look like). A bucket lets a short probe through at full speed, which says
// nothing of the link's rate; the server tries an up-switch with padding first. After
// 20 s of settling, over 60 s: at most 2 spatial switches, no freeze over 1 s, audio
// concealed under 1 %.
test('shaped links: token-bucket shapers of 2, 15 and 30 KB keep the layers steady', { skip, timeout: 600000 }, async () => {
  await shapedRoom({ simulcast: true }, async (server, [a, b, c]) => {
    const aId = a.peer.id;
    await untilWidth(b, aId, 640, 45000, 'B, open link');
    await untilWidth(c, aId, 640, 20000, 'C, open link');
    await assertUdp([a, b, c]);
    const failures = [];
    for (const burst of ['2kb', '15kb', '30kb']) {
      capDownlink(2, 450, { burst, latency: '200ms' });
      capDownlink(3, 1000, { burst, latency: '200ms' });
      const watch = setInterval(async () => console.log(`  ${burst}: server, B: ${await serverView(server, b.peer.id)}; C: ${await serverView(server, c.peer.id)}`), 2000);
      try {
        await sleep(20000);
        const before = await Promise.all([layerEvents(b), layerEvents(c)]);
        const [bs, cs] = await Promise.all([sample(b, aId, 60000), sample(c, aId, 60000)]);
        const after = await Promise.all([layerEvents(b), layerEvents(c)]);
        for (const [k, name, kbit, s] of [[0, 'B', 450, bs], [1, 'C', 1000, cs]]) {
          const events = after[k].slice(before[k].length);
          const switches = spatialSwitches(events, lastSpatial(before[k], 1));
          const freeze = longestFreeze(s);
          const concealed = concealedShare(s);
          const widths = [...new Set(s.map((x) => x.video?.frameWidth))];
          const decoded = s.at(-1).video.framesDecoded - s[0].video.framesDecoded;
          const line = `${name} at ${kbit} kbit/s, ${burst} bucket, 200 ms queue, 60 s after 20 s of settling: ${switches} spatial switches, widths ${JSON.stringify(widths)}, ${decoded} frames, longest freeze ${freeze} ms, audio concealed ${(concealed * 100).toFixed(2)} %`;
          console.log(line);
          if (switches > 2 || freeze > 1000 || concealed >= 0.01 || decoded < 300) failures.push(line);
        }
      } finally {
        clearInterval(watch);
      }
    }
    capDownlink(2, null);
    capDownlink(3, null);
    assert.deepEqual(failures, []);
  });
});

/**
 * A UDP relay on `listenIp:port` in front of the server's media port: what a participant
 * sends it goes to `serverIp:port` from a socket of the relay's per participant, and what
 * the server answers goes back; towards participants for which `jitterFor(address)` holds,
 * each packet is held for a random 0..`jitterMs` ms, in order (a Wi-Fi path's jitter;
 * netem does not work on this kernel). `stats()`: packets delayed and the mean delay.
 */
function jitterRelay({ listenIp, port, serverIp, jitterMs, jitterFor }) {
  const front = dgram.createSocket('udp4');
  const clients = new Map();
  let delayed = 0;
  let delaySum = 0;
  let closed = false;
  // How late the relay's own timers fired (a starved event loop adds delay the scenario
  // did not ask for): counts of at most 5, 20 and 50 ms late, and more.
  const late = [0, 0, 0, 0];
  let lateMax = 0;
  front.on('message', (msg, rinfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    let c = clients.get(key);
    if (!c) {
      const back = dgram.createSocket('udp4');
      back.bind(0, listenIp);
      c = { back, lastDue: 0 };
      const jitter = jitterFor(rinfo.address);
      back.on('message', (m) => {
        if (!jitter) return front.send(m, rinfo.port, rinfo.address);
        const now = performance.now();
        const due = Math.max(c.lastDue, now + Math.random() * jitterMs);
        c.lastDue = due;
        delayed++;
        delaySum += due - now;
        setTimeout(() => {
          if (closed) return;
          const l = performance.now() - due;
          late[l <= 5 ? 0 : l <= 20 ? 1 : l <= 50 ? 2 : 3]++;
          lateMax = Math.max(lateMax, l);
          front.send(m, rinfo.port, rinfo.address);
        }, due - now);
      });
      clients.set(key, c);
    }
    c.back.send(msg, port, serverIp);
  });
  front.bind(port, listenIp);
  return {
    stats: () => ({ delayed, meanMs: delayed ? delaySum / delayed : 0, late: { upTo5: late[0], upTo20: late[1], upTo50: late[2], over50: late[3], maxMs: Math.round(lateMax) } }),
    close() {
      closed = true;
      front.close();
      for (const c of clients.values()) c.back.close();
    },
  };
}

// Issue 17, jitter: B's path adds 0-30 ms of random delay to every packet the server sends
// it (in order, as Wi-Fi does), the link itself wide; A publishes 1280x720 with the
// client's two simulcast encodings, the top one allowed 2 Mbit/s and given random blocks
// to encode so that it spends them (a big camera or a screen share). The delay-based estimator must tell jitter from a queue: the server keeps
// B's consumer on the top layer in at least 90 % of the samples over 60 s. C, without
// jitter, is the control.
test('shaped links: 30 ms of jitter on a wide link keeps a 1280x720 top layer', { skip, timeout: 300000 }, async () => {
  const port = 20000 + (ID % 20000);
  const relay = jitterRelay({ listenIp: RELAY_IP, port, serverIp: SERVER_IP, jitterMs: 30, jitterFor: (address) => address === `${net(2)}.2` });
  try {
    await shapedRoom(
      { simulcast: true, width: 1280, height: 720, topMaxBitrate: 2000000, marker: { noise: true } },
      async (server, [a, b]) => {
        const aId = a.peer.id;
        // What the server and A's encoder do while B waits for the top layer (on a loaded
        // machine Chromium's CPU adaptation can shrink every encoding A sends).
        const waiting = setInterval(async () => console.log(`  waiting: server, B: ${await serverView(server, b.peer.id)}; A sends ${await sending(a)}`), 5000);
        await untilWidth(b, aId, 1280, 45000, 'B, behind the jitter').finally(() => clearInterval(waiting));
        await assertUdp([a, b]);
        const layers = [];
        const estimates = [];
        const watch = setInterval(async () => {
          const all = JSON.parse((await consoleLine(server, 'statsTransport').catch(() => '[]')) || '[]');
          const t = all.find((x) => x.peerId === b.peer.id && x.consumers.length);
          layers.push(t?.consumers.find((c) => c.kind === 'video')?.currentLayer);
          estimates.push(t?.estimateBps ?? 0);
        }, 1000);
        const views = setInterval(async () => console.log(`  server, B: ${await serverView(server, b.peer.id)}`), 5000);
        const bs = await sample(b, aId, 60000).finally(() => {
          clearInterval(watch);
          clearInterval(views);
        });
        const top = layers.filter((x) => x === 1).length / Math.max(1, layers.length);
        const sorted = [...estimates].sort((x, y) => x - y);
        const median = Math.round(sorted[Math.floor(sorted.length / 2)] / 1000);
        const widths = (s) => JSON.stringify([...new Set(s.map((x) => x.video?.frameWidth))]);
        const bitrate = (s) => Math.round(((s.at(-1).video.bytesReceived - s[0].video.bytesReceived) * 8) / ((s.at(-1).at - s[0].at) / 1000) / 1000);
        const r = relay.stats();
        console.log(
          `jitter 0-30 ms (mean ${r.meanMs.toFixed(1)} ms over ${r.delayed} packets; relay timers late ${JSON.stringify(r.late)}): B on the top layer at the server in ${(top * 100).toFixed(0)} % of ${layers.length} samples, ` +
            `estimate median ${median} kbit/s, widths ${widths(bs)}, ${bitrate(bs)} kbit/s received, RTP jitter seen ${Math.round(bs.at(-1).video.jitter * 1000)} ms, longest freeze ${longestFreeze(bs)} ms; A sends ${await sending(a)}`,
        );
        assert.ok(r.delayed > 1000 && r.meanMs > 10, `the relay delayed ${JSON.stringify(r)}`);
        assert.ok(layers.length >= 50 && top >= 0.9, `B's layer at the server: ${JSON.stringify(layers)}`);
        // The estimate itself stays above what a 720p layer needs (the note of issue 9 saw
        // 30 ms of jitter hold it under 1 Mbit/s in virtual time); A's encoder, on 2 cores
        // with noise to encode, sends 0.7-1.7 Mbit/s, and the estimate may only be 1.5x
        // what was acknowledged.
        assert.ok(median >= 1200, `B's estimate: median ${median} kbit/s`);
      },
      { WEBRTC_ANNOUNCED_ADDRESS: RELAY_IP, WEBRTC_PORT: String(port), MEDIASOUP_NUM_WORKERS: '1' },
      // A and B only: three Chromiums encoding and decoding 720p noise overload 2 cores.
      2,
    );
  } finally {
    relay.close();
  }
});
