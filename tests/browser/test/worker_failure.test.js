// Issue 8 with real Chromium: the media worker hosting a room panics (a fault injected
// through the console of a test build, `--features fault-injection`). The process keeps
// serving; /health answers 503 until the replacement worker runs, then 200; the room's
// two participants get `roomReady` again on their signaling socket, set their media up
// again without reloading the page and decode each other again; a second room, on the
// other worker, keeps its media (same consumers, still decoding) through the fault.
'use strict';

const fs = require('node:fs');
const net = require('node:net');
const test = require('node:test');
const assert = require('node:assert/strict');
const { compat, pageServer, launch, decodingAll, stats, FAULT_BIN, health, joinPage } = require('./harness.js');

/** Sends console lines, one per prompt; resolves with everything the console said. */
function consoleSession(server, lines) {
  return new Promise((resolve, reject) => {
    const s = net.connect(server.consolePath);
    let out = '';
    let sent = 0;
    s.on('data', (d) => {
      out += d;
      if (out.split('cmd> ').length - 1 > sent) {
        if (sent < lines.length) s.write(lines[sent] + '\n');
        else s.end();
        sent++;
      }
    });
    s.on('close', () => resolve(out));
    s.on('error', reject);
    setTimeout(() => s.destroy(), 5000);
  });
}

/** A page joined as `joinPage` does, marked so that a reload would show. */
async function join(browser, web, server, roomId, nickname) {
  const page = await joinPage(browser, web, server, roomId, nickname);
  // Survives as long as the page is not reloaded.
  await page.evaluate(() => {
    window.loadedOnce = true;
  });
  return page;
}

test(
  'a media worker that panics is replaced; its participants recover without a reload, the other room keeps its media',
  { timeout: 180000, skip: !fs.existsSync(FAULT_BIN) && `no fault-injection build at ${FAULT_BIN}` },
  async () => {
    const server = await compat.startServer({ MEDIASOUP_NUM_WORKERS: '2' }, { bin: FAULT_BIN });
    const web = await pageServer();
    const browser = await launch();
    try {
      // Rooms go to the workers in turn: A on worker 0, B on worker 1.
      const roomA = await compat.createRoom(server);
      const roomB = await compat.createRoom(server);
      const a = [await join(browser, web, server, roomA, 'a1'), await join(browser, web, server, roomA, 'a2')];
      const b = [await join(browser, web, server, roomB, 'b1'), await join(browser, web, server, roomB, 'b2')];
      for (const page of [...a, ...b]) await decodingAll(page, { videos: 1, audios: 1 });
      const aBefore = await Promise.all(a.map(stats));
      const bBefore = await Promise.all(b.map(stats));
      assert.deepEqual(await health(server), { status: 200, body: { success: true, message: 'Healthy' } });

      // Worker 0 panics; its replacement is held back 1.5 s so that the outage is seen.
      const crashedAt = Date.now();
      const said = await consoleSession(server, ['crashWorker 0 panic 1500']);
      assert.match(said, /media worker 0: Panic injected/);
      const down = await compat.eventually(async () => {
        const h = await health(server);
        return h.status !== 200 && h;
      }, 5000, '/health to report the failed worker');
      assert.equal(down.status, 503);
      assert.equal(down.body.success, false);
      assert.match(down.body.message, /media worker 0 failed \(it panicked: injected fault/);
      await compat.eventually(async () => (await health(server)).status === 200, 10000, '/health healthy again');
      const healthyAfter = Date.now() - crashedAt;

      // Room A: both pages set up again on the same page (no reload) and decode each
      // other, through new consumers.
      for (const page of a) {
        await compat.eventually(() => page.evaluate(() => window.kolab.restarts() >= 1), 20000, `${page.nickname} restarted`);
      }
      for (const [i, page] of a.entries()) {
        const s = await decodingAll(page, { videos: 1, audios: 1, ms: 30000 });
        assert.equal(await page.evaluate(() => window.loadedOnce), true, 'the page was not reloaded');
        const old = new Set(aBefore[i].map((c) => c.id));
        const fresh = s.filter((c) => c.framesDecoded > 0 || c.totalSamplesReceived > 0);
        assert.ok(fresh.length >= 2 && fresh.every((c) => !old.has(c.id)), `new consumers decoding: ${JSON.stringify(s)}`);
        const notes = await page.evaluate(() => window.kolab.state.notifications.map((n) => n.method));
        assert.equal(notes.filter((m) => m === 'roomReady').length, 2, `roomReady twice: ${notes}`);
        assert.ok(notes.includes('peerClosed'), `the other peer left and came back: ${notes}`);
      }
      const recoveredAfter = Date.now() - crashedAt;

      // Room B, on worker 1: the same consumers never stopped decoding, nothing restarted.
      for (const [i, page] of b.entries()) {
        assert.equal(await page.evaluate(() => window.kolab.restarts()), 0);
        const now = await decodingAll(page, { videos: 1, audios: 1, ms: 5000 });
        for (const c of bBefore[i]) {
          const later = now.find((x) => x.id === c.id);
          assert.ok(later, `consumer ${c.id} of room B still there`);
          if (c.kind === 'video') assert.ok(later.framesDecoded > c.framesDecoded, JSON.stringify([c, later]));
          else assert.ok(later.totalSamplesReceived > c.totalSamplesReceived, JSON.stringify([c, later]));
        }
      }

      // One process all along; the log tells what happened.
      assert.equal(server.exited, null);
      const logged = server.stdout + server.stderr;
      assert.match(logged, /media worker failed/);
      assert.match(logged, new RegExp(`roomReady sent again room=${roomA}`));
      assert.doesNotMatch(logged, new RegExp(`roomReady sent again room=${roomB}`));
      console.log(`worker replaced (healthy) after ${healthyAfter} ms; room A decoding again after ${recoveredAfter} ms`);
    } finally {
      await browser.close();
      web.close();
      await server.stop();
    }
  },
);
