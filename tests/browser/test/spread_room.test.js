// Issue 16 with real Chromium (contract section 6: "Rooms larger than ROUTER_SCALE_SIZE
// peers spread over several workers, with each producer piped to the other workers of
// the room"): two workers, ROUTER_SCALE_SIZE=2, four participants through the Kolab
// flow in one room, two on each worker; everyone decodes everyone; a screen share from
// the second worker, a pause and resume from the first, two participants leaving (the
// second worker's router closes), a late joiner (a router on the second worker again),
// and nothing left on either worker once everyone left.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { compat, pageServer, launch, decodingAll, stats, waitStats, consoleLine, joinPage, room, FAULT_BIN } = require('./harness.js');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const videoFrom = (s, peerId, source = 'webcam') => s.find((c) => c.kind === 'video' && c.peerId === peerId && c.source === source);

/**
 * `decodingAll`, retried until it holds: while the receivers' bandwidth estimates ramp up
 * in the first seconds of a four-person call, the allocation pauses a video for a moment
 * (as in a one-worker room of four: measured with ROUTER_SCALE_SIZE=16 too).
 */
async function decodingAllEventually(page, opts, ms = 45000) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await decodingAll(page, { ...opts, ms: Math.max(1000, end - Date.now()) });
    } catch (e) {
      if (Date.now() >= end) throw e;
      await sleep(1000);
    }
  }
}

/** `dumpWorkers`, parsed: per worker its counters and the rooms it has a router of. */
async function workers(server) {
  const out = await consoleLine(server, 'dumpWorkers');
  const list = [];
  for (const line of out.split('\n')) {
    const w = line.match(/^worker (\d+) port:(\d+) rooms:(\d+) transports:(\d+) \(connected:\d+\) producers:(\d+) consumers:(\d+)/);
    if (w) {
      const pipeSent = +(line.match(/ pipeSent:(\d+)/)?.[1] ?? NaN);
      list.push({ worker: +w[1], rooms: +w[3], transports: +w[4], producers: +w[5], consumers: +w[6], pipeSent, roomIds: [], mirrors: {} });
      continue;
    }
    const r = line.match(/^\s+room (\S+)(?: peers:(\d+) transports:(\d+) mirroredProducers:(\d+))?/);
    if (r && list.length) {
      list[list.length - 1].roomIds.push(r[1]);
      list[list.length - 1].mirrors[r[1]] = +(r[4] ?? NaN);
    }
  }
  return list;
}

/** Waits until `pred(dumpWorkers)` holds (the workers' snapshots are a second old). */
async function waitWorkers(server, pred, what, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await workers(server);
    if (pred(last)) return last;
    await sleep(500);
  }
  throw new Error(`${what}: not reached in ${ms} ms; dumpWorkers ${JSON.stringify(last)}`);
}

test(
  'a room of four over two workers behaves as a one-worker room',
  { timeout: 240000 },
  async () => {
    const server = await compat.startServer({ MEDIASOUP_NUM_WORKERS: '2', ROUTER_SCALE_SIZE: process.env.SPREAD_SCALE || '2', ...(process.env.SPREAD_DEBUG ? { LOG_LEVEL: 'debug' } : {}) });
    const web = await pageServer();
    const browser = await launch();
    try {
      const roomId = await compat.createRoom(server);
      const pages = [];
      for (const name of ['p1', 'p2', 'p3', 'p4']) pages.push(await joinPage(browser, web, server, roomId, name));
      const [p1, p2, p3, p4] = pages;
      for (const page of pages) await decodingAllEventually(page, { videos: 3, audios: 3 });
      // Two participants (a send and a receive transport each) on each worker, the room
      // on both; each worker forwards to its two participants the three others' streams.
      await waitWorkers(
        server,
        (ws) => ws.length === 2 && ws.every((w) => w.transports === 4 && w.roomIds.includes(roomId) && w.consumers === 12),
        'the room spread two and two',
      );
      // Each worker mirrors the other's four producers (webcam and mic of two
      // participants), and packets crossed both ways.
      const ws = await workers(server);
      for (const w of ws) {
        assert.equal(w.mirrors[roomId], 4, JSON.stringify(ws));
        assert.ok(w.pipeSent > 100, JSON.stringify(ws));
      }

      // A screen share from the second worker (p4) reaches the first (p1).
      await p4.evaluate(() => window.kolab.shareScreen());
      const s = await waitStats(p1, (s) => (videoFrom(s, p4.peer.id, 'screen')?.framesDecoded ?? 0) > 0, 'screen share decoded across workers');
      assert.ok(videoFrom(s, p4.peer.id, 'screen').frameWidth > 0);

      // A pause on the first worker (p1's webcam) reaches the second (p4); resuming
      // restarts its frames.
      await p1.evaluate(() => window.kolab.setPaused('webcam', true));
      await waitStats(p4, (s) => videoFrom(s, p1.peer.id)?.paused === true, 'consumerPaused across workers');
      await sleep(1000);
      const before = videoFrom(await stats(p4), p1.peer.id).framesDecoded;
      await sleep(2000);
      assert.equal(videoFrom(await stats(p4), p1.peer.id).framesDecoded, before, 'no frames while paused');
      await p1.evaluate(() => window.kolab.setPaused('webcam', false));
      await waitStats(p4, (s) => videoFrom(s, p1.peer.id)?.framesDecoded > before + 5, 'frames again after resume');

      // p3 and p4 leave: their consumers close at p1 and p2, the second worker's router
      // of the room closes, p1 and p2 keep each other.
      for (const page of [p3, p4]) await page.evaluate(() => window.kolab.leave());
      for (const page of [p1, p2]) {
        await waitStats(
          page,
          (s) => s.every((x) => x.peerId !== p3.peer.id && x.peerId !== p4.peer.id),
          'the leavers\' consumers closed',
        );
        await decodingAllEventually(page, { videos: 1, audios: 1 });
      }
      await waitWorkers(
        server,
        (ws) => ws.filter((w) => w.roomIds.includes(roomId)).length === 1 && ws.reduce((n, w) => n + w.transports, 0) === 4,
        'the emptied router closed',
      );

      // A late joiner: the room's router is full, so it goes on the other worker again,
      // and everyone decodes everyone.
      const p5 = await joinPage(browser, web, server, roomId, 'p5');
      await decodingAllEventually(p5, { videos: 2, audios: 2 });
      for (const page of [p1, p2]) {
        await waitStats(page, (s) => (videoFrom(s, p5.peer.id)?.framesDecoded ?? 0) > 0, 'the late joiner decoded');
      }
      await waitWorkers(server, (ws) => ws.every((w) => w.roomIds.includes(roomId)), 'the room on both workers again');

      // Everyone leaves: nothing is left on either worker.
      for (const page of [p1, p2, p5]) await page.evaluate(() => window.kolab.leave());
      await waitWorkers(
        server,
        (ws) => ws.every((w) => w.transports === 0 && w.producers === 0 && w.consumers === 0),
        'nothing left on the workers',
      );
    } catch (e) {
      if (process.env.SPREAD_DEBUG) require('node:fs').writeFileSync('/tmp/spread.log', server.stderr);
      throw e;
    } finally {
      await browser.close();
      web.close();
      await server.stop();
    }
  },
);

test(
  'a worker that fails under a spread room costs only its own participants',
  { timeout: 240000, skip: !fs.existsSync(FAULT_BIN) && `no fault-injection build at ${FAULT_BIN}` },
  async () => {
    const server = await compat.startServer({ MEDIASOUP_NUM_WORKERS: '2', ROUTER_SCALE_SIZE: '2' }, { bin: FAULT_BIN });
    const web = await pageServer();
    const browser = await launch();
    try {
      const roomId = await compat.createRoom(server);
      const pages = [];
      for (const name of ['p1', 'p2', 'p3', 'p4']) pages.push(await joinPage(browser, web, server, roomId, name));
      const [p1, p2, p3, p4] = pages;
      for (const page of pages) await decodingAllEventually(page, { videos: 3, audios: 3 });
      // p1 and p2 on the room's first worker (0), p3 and p4 on worker 1.
      await waitWorkers(server, (ws) => ws.every((w) => w.transports === 4), 'two and two');
      const before = await Promise.all([p1, p2].map(stats));

      const said = await consoleLine(server, 'crashWorker 1 panic 0');
      assert.match(said, /media worker 1: Panic injected/);
      // p3 and p4 set their media up again (roomReady), p1 and p2 do not.
      for (const page of [p3, p4]) {
        await compat.eventually(() => page.evaluate(() => window.kolab.restarts() >= 1), 20000, `${page.nickname} restarted`);
      }
      // Everyone decodes everyone again; p3 and p4 are on worker 1's replacement.
      for (const page of pages) await decodingAllEventually(page, { videos: 3, audios: 3 });
      for (const [i, page] of [p1, p2].entries()) {
        assert.equal(await page.evaluate(() => window.kolab.restarts()), 0, `${page.nickname} did not restart`);
        // Its consumer of the other survivor is the same one, still decoding.
        const other = [p1, p2][1 - i];
        const old = before[i].find((c) => c.kind === 'video' && c.peerId === other.peer.id);
        const now = (await stats(page)).find((c) => c.id === old.id);
        assert.ok(now && now.framesDecoded > old.framesDecoded, JSON.stringify([old, now]));
        const notes = await page.evaluate(() => window.kolab.state.notifications.map((n) => n.method));
        assert.equal(notes.filter((m) => m === 'roomReady').length, 1, `roomReady once: ${notes}`);
      }
      await waitWorkers(server, (ws) => ws.every((w) => w.roomIds.includes(roomId) && w.transports === 4), 'spread again');
      assert.equal(server.exited, null);
    } finally {
      await browser.close();
      web.close();
      await server.stop();
    }
  },
);

test(
  'simulcast webcams over two workers: everyone decodes everyone, on the top layer',
  { timeout: 180000 },
  async () => {
    // The Kolab client's two encodings each: a far worker asks its origin for the
    // encodings its consumers forward, the other crosses as notices only.
    const r = await room(4, {}, { MEDIASOUP_NUM_WORKERS: '2', ROUTER_SCALE_SIZE: '2' });
    try {
      for (const page of r.pages) await decodingAllEventually(page, { videos: 3, audios: 3 });
      await waitWorkers(r.server, (ws) => ws.every((w) => w.roomIds.includes(r.roomId) && w.transports === 4), 'two and two');
      // Unconstrained loopback: every video settles on the top encoding (640 wide).
      for (const page of r.pages) {
        await waitStats(
          page,
          (s) => s.filter((c) => c.kind === 'video' && c.frameWidth >= 640).length === 3,
          'every video on the top layer',
          45000,
        );
      }
    } finally {
      await r.close();
    }
  },
);
