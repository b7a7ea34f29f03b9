// Graceful drain (issue 10) with real Chromium: a meeting started before SIGTERM keeps its
// media until it ends; no new room meanwhile; once the participants leave, the room
// closes by the room rules (10 s), its roomClosed webhook is delivered and the server
// exits 0 by itself.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { room, stats, decodingAll, compat } = require('./harness.js');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every remote video of a page, by consumer id: its framesDecoded. */
async function framesByConsumer(page) {
  const m = new Map();
  for (const c of await stats(page)) if (c.kind === 'video') m.set(c.id, c.framesDecoded);
  return m;
}

test('SIGTERM: the meeting keeps its media until it ends, then the server exits 0 with roomClosed', { timeout: 180000 }, async () => {
  const hooks = await compat.webhookReceiver();
  const r = await room(2, {}, { WEBHOOK_URL: hooks.url, DRAIN_TIMEOUT: '300' });
  const { server } = r;
  try {
    for (const page of r.pages) await decodingAll(page, { videos: 1, audios: 1 });

    server.proc.kill('SIGTERM');
    await compat.eventually(() => /stop signal: draining/.test(server.stderr), 10000, 'the drain to start');
    const refused = await compat.api(server, 'POST', '/meetmedia/api/sessions');
    assert.equal(refused.status, 503);
    assert.match(refused.json.error, /draining/);
    const health = await compat.api(server, 'GET', '/meetmedia/api/health');
    assert.equal(health.status, 503);
    assert.match(health.json.message, /^draining/);

    // Frames keep being decoded on both pages for several seconds (sampled every 2 s).
    let previous = await Promise.all(r.pages.map(framesByConsumer));
    for (let round = 0; round < 4; round++) {
      await sleep(2000);
      const current = await Promise.all(r.pages.map(framesByConsumer));
      current.forEach((frames, i) => {
        assert.ok(frames.size >= 1, `page ${i} lost its video consumer`);
        for (const [id, n] of frames) {
          const before = previous[i].get(id) ?? 0;
          assert.ok(n > before, `page ${i}, consumer ${id}: framesDecoded ${before} -> ${n} during the drain`);
        }
      });
      previous = current;
    }
    assert.equal(server.exited, null, 'the server is still running');
    for (const page of r.pages) await decodingAll(page, { videos: 1, audios: 1 });

    // The meeting ends: the room closes 10 s later, the webhook goes out, exit 0.
    for (const page of r.pages) await page.evaluate(() => window.kolab.leave());
    const exit = await Promise.race([
      server.exitPromise,
      sleep(45000).then(() => {
        throw new Error(`the server did not exit after the meeting ended\n${server.stderr.slice(-3000)}`);
      }),
    ]);
    assert.deepEqual(exit, { code: 0, signal: null }, server.stderr.slice(-3000));
    const hook = await compat.eventually(
      () => hooks.hooks.find((h) => h.json && h.json.roomId === r.roomId && h.json.event === 'roomClosed'),
      2000,
      'roomClosed webhook',
    );
    assert.deepEqual(hook.json, { roomId: r.roomId, event: 'roomClosed' });
  } finally {
    await r.close();
    await hooks.close();
  }
});
