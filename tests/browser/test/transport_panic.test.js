// Issue 18, section 1 ("Containment"), with real Chromium: a panic inside one
// participant's transport (injected through the console of a test build,
// `--features fault-injection`: `crashTransport <transportId>` makes the transport's next
// datagram panic inside it) costs that transport only. Two rooms on the one media worker:
// the crashed participant's peer in room A gets `consumerClosed` for the consumers of its
// producers, and the room goes on (the crashed participant still decodes its peer); room
// B's participants keep decoding each other through the same consumers; the worker is
// not replaced (/health stays 200, same port) and counts the panic.
'use strict';

const fs = require('node:fs');
const test = require('node:test');
const assert = require('node:assert/strict');
const { compat, pageServer, launch, decodingAll, stats, consoleLine, FAULT_BIN, health, joinPage: join } = require('./harness.js');

/** The same consumers as `before`, each having decoded more since. */
async function stillDecoding(page, before) {
  const now = await decodingAll(page, { videos: 1, audios: 1, ms: 10000 });
  for (const c of before) {
    const later = now.find((x) => x.id === c.id);
    assert.ok(later, `${page.nickname}: consumer ${c.id} still there`);
    if (c.kind === 'video') assert.ok(later.framesDecoded > c.framesDecoded, JSON.stringify([c, later]));
    else assert.ok(later.totalSamplesReceived > c.totalSamplesReceived, JSON.stringify([c, later]));
  }
}

test(
  'a panic inside one transport closes that transport only: its room goes on, the other room on the same worker keeps its media',
  { timeout: 180000, skip: !fs.existsSync(FAULT_BIN) && `no fault-injection build at ${FAULT_BIN}` },
  async () => {
    const server = await compat.startServer({ MEDIASOUP_NUM_WORKERS: '1' }, { bin: FAULT_BIN });
    const web = await pageServer();
    const browser = await launch();
    try {
      const roomA = await compat.createRoom(server);
      const roomB = await compat.createRoom(server);
      const a = [await join(browser, web, server, roomA, 'a1'), await join(browser, web, server, roomA, 'a2')];
      const b = [await join(browser, web, server, roomB, 'b1'), await join(browser, web, server, roomB, 'b2')];
      for (const page of [...a, ...b]) await decodingAll(page, { videos: 1, audios: 1 });
      assert.deepEqual(await health(server), { status: 200, body: { success: true, message: 'Healthy' } });
      const dumped = await consoleLine(server, 'dumpWorkers');
      const port = dumped.match(/worker 0 port:(\d+)/)?.[1];
      assert.ok(port, dumped);
      assert.match(dumped, /transportPanics:0/);
      assert.match(dumped, new RegExp(`room ${roomA}`));
      assert.match(dumped, new RegExp(`room ${roomB}`));
      const aBefore = await Promise.all(a.map(stats));
      const bBefore = await Promise.all(b.map(stats));

      // a1's sending transport panics at its next datagram (its media keep coming).
      const sendTransport = await a[0].evaluate(() => window.kolab.state.sendTransport.id);
      const said = await consoleLine(server, `crashTransport ${sendTransport}`);
      assert.match(said, new RegExp(`transport ${sendTransport} on media worker 0: its next datagram panics`));
      const crashedAt = Date.now();

      // a2's consumers of a1's microphone and camera are closed (`consumerClosed`).
      const ofA1 = aBefore[1].map((c) => c.id);
      assert.equal(ofA1.length, 2, JSON.stringify(aBefore[1]));
      await compat.eventually(
        () => a[1].evaluate((ids) => ids.every((id) => window.kolab.state.closedConsumers.includes(id)), ofA1),
        10000,
        "a2's consumers of a1 closed",
      );
      const closedAfter = Date.now() - crashedAt;
      const notes = await a[1].evaluate(() => window.kolab.state.notifications.map((n) => n.method));
      assert.equal(notes.filter((m) => m === 'consumerClosed').length, 2, `${notes}`);
      assert.ok(!notes.includes('peerClosed'), `a1 stays in the room: ${notes}`);

      // The server logged it once, counted it, and closed the transport as any close of
      // the engine's own.
      await compat.eventually(() => /transport closed by the engine/.test(server.stdout + server.stderr), 5000, 'the close logged');
      const logged = server.stdout + server.stderr;
      const panics = logged.split('\n').filter((l) => l.includes("internal error while handling this transport's input"));
      assert.equal(panics.length, 1, panics.join('\n'));
      assert.match(panics[0], new RegExp(`transport=${sendTransport}`));
      assert.match(panics[0], /injected fault: transport .* panics on a datagram/);

      // No worker replacement: healthy all along, the same port, one process.
      assert.doesNotMatch(logged, /media worker failed/);
      assert.doesNotMatch(logged, /roomReady sent again/);
      assert.deepEqual(await health(server), { status: 200, body: { success: true, message: 'Healthy' } });
      const after = await compat.eventually(async () => {
        const d = await consoleLine(server, 'dumpWorkers');
        return /transportPanics:1/.test(d) && d;
      }, 5000, 'dumpWorkers to count the panic');
      assert.match(after, /^every media worker runs/);
      assert.equal(after.match(/worker 0 port:(\d+)/)?.[1], port);
      const metrics = await fetch(`${server.base}/metrics`, { headers: { Authorization: `Bearer ${server.token}` } });
      assert.match(await metrics.text(), /^kolabmeet_transport_panics_total\{worker="0"\} 1$/m);

      // Room A goes on: a1 (its receiving transport untouched) still decodes a2 through
      // the same consumers; room B never noticed.
      await stillDecoding(a[0], aBefore[0]);
      for (const [i, page] of b.entries()) {
        assert.equal(await page.evaluate(() => window.kolab.restarts()), 0);
        await stillDecoding(page, bBefore[i]);
      }
      for (const page of [...a, ...b]) assert.equal(await page.evaluate(() => window.kolab.restarts()), 0);
      assert.equal(server.exited, null);
      console.log(`a2's consumers of a1 closed ${closedAfter} ms after the crash was armed; logged: ${panics[0]}`);
    } finally {
      await browser.close();
      web.close();
      await server.stop();
    }
  },
);
