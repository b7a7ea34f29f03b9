// Issue 18 §4, "a step of the wall clock (what NTP does to a host)": the server runs under
// libfaketime (Debian's `faketime`), whose offset for the wall clock (CLOCK_REALTIME) the
// test moves by an hour mid-call while the monotonic clock goes on untouched, as a step
// by NTP does. Sender reports are written on the worker's clock
// (`SENDER_REPORT_CLOCK=forwarding`, where the server's own clock shows; the default
// carries the publisher's): a receiver must see their NTP times go on with its own time,
// with no jump for audio or video (its lip sync pairs the two). The room's `createdAt`
// keeps the time it was created at; a room created after the step gets the stepped clock
// (which shows that the step reached the process).
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const test = require('node:test');
const assert = require('node:assert/strict');
const { room, compat, decodingAll } = require('./harness.js');

const FAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** B's latest sender-report NTP time per consumer kind, against the stats' own time. */
async function reports(page) {
  const { consumers } = await page.evaluate(() => window.kolab.rtcpStats());
  const out = {};
  for (const c of consumers) if (c.remoteTimestamp) out[c.kind] = { ntp: c.remoteTimestamp, at: c.timestamp, reports: c.reportsSent };
  return out;
}

/** Sender-report times sampled every 500 ms for `ms`: per kind, (NTP time - local time) for each new report. */
async function offsets(page, ms) {
  const seen = { audio: [], video: [] };
  const last = {};
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const r = await reports(page);
    for (const kind of ['audio', 'video']) {
      if (r[kind] && r[kind].reports !== last[kind]) {
        last[kind] = r[kind].reports;
        seen[kind].push(r[kind].ntp - r[kind].at);
      }
    }
    await sleep(500);
  }
  return seen;
}

async function createdAt(server, id) {
  const s = await compat.api(server, 'GET', '/meetmedia/api/stats');
  return s.json.rooms.find((r) => r.id === id)?.createdAt;
}

test('a step of the wall clock: sender reports and createdAt keep their meaning', { timeout: 180000, skip: !fs.existsSync(FAKETIME) && `no libfaketime at ${FAKETIME} (Debian package faketime)` }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kolabmeet-clock-'));
  const offsetFile = path.join(dir, 'offset');
  fs.writeFileSync(offsetFile, '+0\n');
  const r = await room(2, (i) => ({ webcam: i === 0, mic: true }), {
    LD_PRELOAD: FAKETIME,
    FAKETIME_TIMESTAMP_FILE: offsetFile,
    FAKETIME_NO_CACHE: '1',
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
    SENDER_REPORT_CLOCK: 'forwarding',
  });
  try {
    const [, b] = r.pages;
    await decodingAll(b, { videos: 1, audios: 1 });
    const created = await createdAt(r.server, r.roomId);
    const before = await offsets(b, 8000);
    fs.writeFileSync(offsetFile, '+3600\n');
    const after = await offsets(b, 8000);
    const later = await compat.createRoom(r.server);
    const createdLater = await createdAt(r.server, later);
    const createdAgain = await createdAt(r.server, r.roomId);
    const span = (xs) => Math.round(Math.max(...xs) - Math.min(...xs));
    const mean = (xs) => xs.reduce((a, x) => a + x, 0) / xs.length;
    const jump = (kind) => Math.round(mean(after[kind]) - mean(before[kind]));
    console.log(
      `sender reports (NTP - local time): audio ${before.audio.length} + ${after.audio.length} reports, jump ${jump('audio')} ms (spread ${span([...before.audio, ...after.audio])} ms); ` +
        `video ${before.video.length} + ${after.video.length}, jump ${jump('video')} ms (spread ${span([...before.video, ...after.video])} ms); ` +
        `createdAt ${created} -> ${createdAgain}; a room created after the step: ${createdLater} (${createdLater - created} s later)`,
    );
    for (const kind of ['audio', 'video']) {
      assert.ok(before[kind].length >= 3 && after[kind].length >= 3, `${kind} reports: ${JSON.stringify([before[kind], after[kind]])}`);
      assert.ok(Math.abs(jump(kind)) < 100, `${kind}'s sender reports jumped ${jump(kind)} ms`);
    }
    assert.equal(createdAgain, created, "the room's createdAt keeps its value");
    assert.ok(createdLater - created >= 3600, `the step reached the server: a later room's createdAt ${createdLater} against ${created}`);
  } finally {
    await r.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
