// Contract section 6 with real Chromium: three participants in one room, each sending a
// simulcast webcam (two encodings) and a microphone through kolabmeet-server over UDP;
// everyone decodes both others' video and audio.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { room, decodingAll } = require('./harness.js');

test('three participants see and hear each other over UDP', { timeout: 120000 }, async () => {
  const r = await room(3);
  try {
    for (const page of r.pages) {
      const s = await decodingAll(page, { videos: 2, audios: 2 });
      const others = new Set(s.map((c) => c.peerId));
      assert.equal(others.size, 2, 'streams from both other participants');
      assert.ok(!others.has(page.peer.id), 'not its own streams');
      for (const c of s.filter((x) => x.kind === 'video')) assert.ok(c.frameHeight > 0);
    }
    const t = await r.pages[0].evaluate(() => window.kolab.transportStats());
    assert.equal(t.send.protocol, 'udp');
  } finally {
    await r.close();
  }
});
