// Issue 18 §3, "soaks with real media": three Chromium participants through the Kolab
// client flow (simulcast webcam and microphone), each leaving and joining again every two
// minutes (one after another, 40 s apart), the first one sharing its screen for 30 s of
// each two minutes. Every 10 s the test reads the server process (resident memory, file
// descriptors, threads, CPU time), its tables (console `dumpInternals`, `dumpWorkers`:
// rooms, peers, sockets, timers, transports, producers, consumers, packets out) and every
// receiver's getStats(). At the end of each two-minute cycle (everyone joined, no screen
// share) the tables and descriptors must be what they were at the end of the first, and
// memory within 30 MB of it; no video freeze over 1 s outside the 10 s after a join, a
// leave or a screen share change. CPU per forwarded packet is printed per cycle.
//
// Five minutes by default (CI: two whole cycles after the first); the hour that issue 18
// asks for: KOLABMEET_SOAK_SECONDS=3600 node --test test/soak.test.js
'use strict';

const fs = require('node:fs');
const test = require('node:test');
const assert = require('node:assert/strict');
const { compat, pageServer, launch, stats, consoleLine } = require('./harness.js');

const SECONDS = Number(process.env.KOLABMEET_SOAK_SECONDS || 300);
const CYCLE_MS = 120000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The server process as /proc shows it. */
function processFigures(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const targets = fdTargets(pid);
  return {
    rssMb: kb('VmRSS') / 1024,
    threads: kb('Threads'),
    fds: Object.values(targets).reduce((a, b) => a + b, 0),
    fdTargets: targets,
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100,
  };
}

/**
 * The sockets of `pid` by inode: `tcp <local port> <state>`, `udp <local port>`, from
 * /proc/<pid>/net (what is in neither is a Unix socket).
 */
function socketKinds(pid) {
  const kinds = new Map();
  const states = { '01': 'established', '0A': 'listen', '06': 'time-wait', '08': 'close-wait' };
  for (const proto of ['tcp', 'tcp6', 'udp', 'udp6']) {
    let text = '';
    try {
      text = fs.readFileSync(`/proc/${pid}/net/${proto}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const port = parseInt(f[1].split(':')[1], 16);
      const kind = proto.startsWith('tcp') ? `tcp ${port} ${states[f[3]] ?? f[3]}` : `udp ${port}`;
      kinds.set(f[9], kind);
    }
  }
  return kinds;
}

/** What the descriptors of `pid` point at, by kind (`tcp 8000 listen`, `anon_inode:[eventpoll]`, a path), counted. */
function fdTargets(pid) {
  const counts = {};
  const sockets = socketKinds(pid);
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let t;
    try {
      t = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const inode = /^socket:\[(\d+)\]$/.exec(t)?.[1];
    t = inode ? (sockets.get(inode) ?? 'socket (unix)') : t.replace(/:\[\d+\]$/, '');
    counts[t] = (counts[t] ?? 0) + 1;
  }
  return counts;
}

/**
 * `processFigures` at a cycle's end: the descriptors counted up to three times 1 s apart
 * and the lowest count kept, so that one a connection holds for a moment (a peer's
 * socket being closed, the console's) is not taken for a leak; a leak stays.
 */
async function settledFigures(pid) {
  let best = processFigures(pid);
  for (let i = 0; i < 2; i++) {
    await sleep(1000);
    const next = processFigures(pid);
    if (next.fds < best.fds) best = { ...next, cpuSeconds: best.cpuSeconds };
  }
  return best;
}

/** The server's tables: control plane (`dumpInternals`) and workers (`dumpWorkers`). */
async function tables(server) {
  const internals = await consoleLine(server, 'dumpInternals');
  const workers = await consoleLine(server, 'dumpWorkers');
  const out = {};
  for (const [, k, v] of internals.matchAll(/(\w+):(\d+)/g)) out[k] = Number(v);
  // The worker lines only (each worker's rooms follow on lines of their own).
  const lines = workers.split('\n').filter((l) => l.startsWith('worker '));
  const sum = (re) => lines.reduce((n, l) => n + Number(re.exec(l)?.[1] ?? 0), 0);
  out.workerTransports = sum(/ transports:(\d+)/);
  out.workerProducers = sum(/ producers:(\d+)/);
  out.workerConsumers = sum(/ consumers:(\d+)/);
  out.packetsOut = sum(/ packetsOut:(\d+)/);
  return out;
}

test(`soak: three participants rejoining every two minutes with a screen share, ${SECONDS} s`, { timeout: (SECONDS + 240) * 1000 }, async () => {
  // KOLABMEET_SERVER_LOG=file keeps the server's log (KOLABMEET_SERVER_LOG_LEVEL=trace:
  // key frame requests sent and held, consumerLayersChanged sent).
  const server = await compat.startServer({ LOG_LEVEL: process.env.KOLABMEET_SERVER_LOG_LEVEL ?? 'warn' });
  const web = await pageServer();
  const browser = await launch();
  const roomId = await compat.createRoom(server);
  const pages = [null, null, null];
  const events = []; // times of joins, leaves and screen share changes
  const join = async (i) => {
    const peer = await compat.createPeer(server, roomId, 31);
    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (e) => console.error(`p${i}:`, e));
    await page.goto(web.url);
    await page.evaluate((o) => window.kolab.start(o), { base: server.base, query: peer.query, nickname: `p${i}` });
    pages[i] = page;
    events.push(Date.now());
  };
  const leave = async (i) => {
    const page = pages[i];
    pages[i] = null;
    events.push(Date.now());
    await page.evaluate(() => window.kolab.leave()).catch(() => {});
    await page.context().close();
  };
  const samples = [];
  const cycleEnds = [];
  const freezes = [];
  let lastVideo = new Map(); // consumer id -> {freezeCount, totalFreezesDuration}
  try {
    for (let i = 0; i < 3; i++) await join(i);
    const t0 = Date.now();
    let sharing = false;
    let nextSample = t0;
    let lastSampleAt = Date.now();
    let cycle = 0;
    const done = new Set();
    while (Date.now() - t0 < SECONDS * 1000) {
      const t = Date.now() - t0;
      const inCycle = t % CYCLE_MS;
      cycle = Math.floor(t / CYCLE_MS);
      // Participant i leaves at 10 + 40 i s into each cycle and joins 5 s later.
      for (let i = 0; i < 3; i++) {
        const key = `${cycle}:${i}`;
        if (inCycle >= 10000 + 40000 * i && !done.has(key) && pages[i]) {
          done.add(key);
          await leave(i);
          await sleep(5000);
          await join(i);
        }
      }
      // The first participant shares its screen from 30 s to 60 s of each cycle.
      const wantShare = inCycle >= 30000 && inCycle < 60000 && pages[0];
      if (wantShare && !sharing) {
        await pages[0].evaluate(() => window.kolab.shareScreen()).catch((e) => console.error('share', e));
        sharing = true;
        events.push(Date.now());
      } else if (!wantShare && sharing) {
        if (pages[0]) await pages[0].evaluate(() => window.kolab.stopScreen()).catch((e) => console.error('stop share', e));
        sharing = false;
        events.push(Date.now());
      }
      if (!pages[0]) sharing = false;
      if (Date.now() >= nextSample) {
        nextSample += 10000;
        const sample = { at: Date.now() - t0, cycle, ...processFigures(server.proc.pid), ...(await tables(server)) };
        samples.push(sample);
        // Freezes: per remote video, what Chromium counted since the last sample.
        const now = new Map();
        for (const [receiver, page] of pages.entries()) {
          if (!page) continue;
          for (const c of (await stats(page).catch(() => [])).filter((x) => x.kind === 'video')) {
            const before = lastVideo.get(c.id);
            if (before && c.freezeCount > before.freezeCount) {
              // Chromium (WebRTC's VideoQualityObserver) counts a freeze when a frame
              // comes at least max(3 times the average interval, the average + 150 ms)
              // after the one before, so each of n freezes lasted 150 ms or more: the
              // longest lasted at most the total less (n - 1) x 150 ms, exactly that
              // when n = 1. (Until 2026-12-07 the total was taken for the longest.)
              const n = c.freezeCount - before.freezeCount;
              const total = Math.round((c.totalFreezesDuration - before.totalFreezesDuration) * 1000);
              const longest = total - (n - 1) * 150;
              // Chromium counts a freeze when it ends, so this one ended since the last
              // sample and began `longest` ms before that: it is outside joins, leaves and
              // share changes ("quiet") when no such event came in the 10 s before any
              // moment it may have begun (until 2026-12-07 the sample's own time was
              // compared, which took a freeze that began at a rejoin and ended 10 s later
              // for a quiet one).
              const [from, to] = [lastSampleAt - longest, Date.now() - longest];
              const quiet = events.every((e) => !(from < e + 10000 && to >= e - 1000));
              // Whose video froze where, and how long since the last join, leave or share
              // change (a freeze is counted when it ends: the 10 s sample after it).
              const since = Math.round((Date.now() - Math.max(0, ...events.filter((e) => e <= Date.now()))) / 1000);
              freezes.push({ at: sample.at, ms: longest, count: n, totalMs: total, quiet, receiver: `p${receiver}`, source: c.source, consumer: c.id.slice(0, 8), sinceEventS: since });
            }
            now.set(c.id, c);
          }
        }
        lastVideo = now;
        lastSampleAt = Date.now();
      }
      // At the end of a cycle (everyone joined, the share off since 60 s): the tables.
      if (inCycle >= CYCLE_MS - 8000 && !done.has(`end${cycle}`) && pages.every(Boolean) && !sharing) {
        done.add(`end${cycle}`);
        await sleep(3000);
        cycleEnds.push({ cycle, ...(await settledFigures(server.proc.pid)), ...(await tables(server)) });
      }
      await sleep(500);
    }
  } finally {
    await browser.close();
    web.close();
    await server.stop();
    if (process.env.KOLABMEET_SERVER_LOG) fs.writeFileSync(process.env.KOLABMEET_SERVER_LOG, server.stderr);
  }
  // Per cycle: CPU seconds per thousand packets sent.
  const perCycle = [];
  for (let c = 0; c <= Math.max(...samples.map((s) => s.cycle)); c++) {
    const s = samples.filter((x) => x.cycle === c);
    if (s.length < 2) continue;
    const [a, b] = [s[0], s.at(-1)];
    const packets = b.packetsOut - a.packetsOut;
    perCycle.push({ cycle: c, packets, cpuUsPerPacket: packets ? Math.round(((b.cpuSeconds - a.cpuSeconds) * 1e6) / packets) : null, rssMb: Math.round(b.rssMb) });
  }
  console.log(`per cycle: ${JSON.stringify(perCycle)}`);
  console.log(`cycle ends: ${JSON.stringify(cycleEnds.map(({ cycle, rssMb, fds, fdTargets, threads, rooms, peers, sockets, timers, pendingEngineRequests, producers, consumerOffers, workerTransports, workerProducers, workerConsumers }) => ({ cycle, rssMb: Math.round(rssMb), fds, fdTargets, threads, rooms, peers, sockets, timers, pendingEngineRequests, producers, consumerOffers, workerTransports, workerProducers, workerConsumers })))}`);
  console.log(`freezes (longest in each 10 s sample): ${JSON.stringify(freezes)}`);
  assert.ok(cycleEnds.length >= 2, `at least two cycle ends measured: ${cycleEnds.length}`);
  const [first] = cycleEnds;
  const keys = ['fds', 'threads', 'rooms', 'peers', 'sockets', 'timers', 'pendingEngineRequests', 'producers', 'consumerOffers', 'workerTransports', 'workerProducers', 'workerConsumers'];
  // Descriptors by kind, exactly as at the first cycle's end, except established TCP
  // connections, which the browsers open and close on their own schedule: to the HTTP
  // port, the peers' WebSockets (counted exactly in `sockets`) and idle keep-alive
  // connections, within 3 of the first cycle's; to a worker's media port, the ICE-TCP
  // connections Chromium opens beside its UDP pair and keeps until its peer connection
  // closes (3 at one cycle's end, 0 at the next, in the full suite on 2026-12-07), at most
  // two per transport. A leak of either grows past these within a few cycles.
  const http = `tcp ${server.port} established`;
  const established = (end) => Object.entries(end.fdTargets).filter(([k]) => / established$/.test(k));
  const iceTcp = (end) => established(end).filter(([k]) => k !== http).reduce((n, [, v]) => n + v, 0);
  const byKind = (end) => Object.fromEntries(Object.entries(end.fdTargets).filter(([k]) => !/ established$/.test(k)));
  for (const end of cycleEnds.slice(1)) {
    const what = `at the end of cycle ${end.cycle} against the first (descriptors by kind: ${JSON.stringify([first.fdTargets, end.fdTargets])}): ${JSON.stringify([first, end])}`;
    assert.deepEqual(byKind(end), byKind(first), `descriptors ${what}`);
    assert.ok((end.fdTargets[http] ?? 0) <= (first.fdTargets[http] ?? 0) + 3, `connections to the HTTP port ${what}`);
    assert.ok(iceTcp(end) <= 2 * end.workerTransports, `ICE-TCP connections ${what}`);
    for (const k of keys.filter((k) => k !== 'fds')) assert.equal(end[k], first[k], `${k} ${what}`);
    assert.ok(end.rssMb - first.rssMb < 30, `resident memory ${Math.round(first.rssMb)} -> ${Math.round(end.rssMb)} MB`);
  }
  const atEvents = freezes.filter((f) => !f.quiet && f.ms > 1000);
  if (atEvents.length) console.log(`freezes over 1 s that began at a join, leave or share change (not this test's criterion; a known weakness, docs/testing.md): ${atEvents.length}, longest ${Math.max(...atEvents.map((f) => f.ms))} ms`);
  const bad = freezes.filter((f) => f.quiet && f.ms > 1000);
  assert.deepEqual(bad, [], 'no freeze over 1 s outside joins, leaves and screen share changes');
});
