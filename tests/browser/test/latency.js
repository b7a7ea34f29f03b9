// Latency as receivers feel it (issue 8): three Chromium participants, each sending one
// 640x480 VP8 encoding (no simulcast) and, unless `audio: false`, Opus in the same
// stream; every receiver's jitter-buffer figures over a measurement window. Three ways
// of connecting them, so that the server's share can be told from the browser's own:
//
//   kolabmeet  through this server, with the Kolab client's flow (mediasoup-client);
//              `simulcast: true` sends the Kolab client's two encodings instead;
//   p2p        a direct Chromium-to-Chromium mesh on loopback (no server at all; each
//              sender encodes once per receiver, so its video leaves later than
//              through an SFU, which lip sync then reads as a slower video path);
//   janus      through Janus's videoroom plugin (when /usr/bin/janus exists): one
//              subscription per receiver for both others' streams.
//
// With audio, Chromium delays each video to play in sync with the audio of the same
// stream (mediasoup-client names the stream after the producer's CNAME), so the video
// figure follows the audio jitter buffer; `syncGapMs` (video minus audio, per receiver
// and sender) is the figure that shows a misleading NTP/RTP mapping.
//
// Issue 15 adds two figures. With `marker` (true, or the page's markerStream options
// such as { audioDelayMs: 100 }) every publisher sends a synthetic pair instead of the
// fake devices (page/marker.js: a canvas video that flashes white and a WebAudio tone
// burst starting at the same tick, once a second), and every receiver times both
// markers as they are played; `summary.avOffset` is, per (receiver, sender), the median
// of video minus audio (ms), which the mesh gives as the baseline of the source's and
// the receiver's own bias. The jitter-buffer figures are then those of the synthetic
// tracks (a mostly black video, silence between tones), not of the fake camera's.
// Always: `summary.cpu`, the server's CPU time (its process and all descendants, such as
// the old server's mediasoup-worker, or Janus) over the window per packet the browsers
// received (audio and video, all receivers), and its RSS at the window's end.
//
// `measure(kind, opts)` returns per receiver stream the windowed figures and a summary;
// `tests/browser/latency.js` prints them for repeated runs, `latency.test.js` asserts a
// loose bound.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { room, launch, pageServer, compat } = require('./harness.js');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const JANUS_BIN = process.env.JANUS_BIN || '/usr/bin/janus';

/** Waits until `fn()` is truthy, polling every 500 ms. */
async function until(fn, what, ms = 45000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(500);
  }
  throw new Error(`${what}: not reached in ${ms} ms`);
}

/**
 * Participant `i`'s marker options: `marker` as given, except that an array
 * `audioDelayMs` gives each participant its own delay (the detector's check within one
 * run: a receiver sees the delayed sender's offset move against the other's).
 */
function markerOf(marker, i) {
  if (!marker || !Array.isArray(marker.audioDelayMs)) return marker;
  return { ...marker, audioDelayMs: marker.audioDelayMs[i] ?? 0 };
}

// ---- kolabmeet ------------------------------------------------------------------

async function kolabmeetSetup({ audio, fps, participants, serverEnv, simulcast = false, marker = false }) {
  const r = await room(participants, (i) => ({ simulcast, mic: audio, fps, marker: markerOf(marker, i) }), { LOG_LEVEL: 'info', ...serverEnv });
  return {
    pages: r.pages,
    pid: r.server.proc.pid,
    // The page names each sender by its peer id.
    senderIndex: (key) => r.pages.findIndex((p) => p.peer.id === key),
    figures: (page) => page.evaluate(() => window.kolab.latencyFigures()),
    layerChanges: (page) =>
      page.evaluate(() => window.kolab.state.notifications.filter((n) => n.method === 'consumerLayersChanged').length),
    close: r.close,
    server: r.server,
  };
}

// ---- direct mesh ----------------------------------------------------------------

async function newPages(browser, url, count) {
  const pages = [];
  for (let i = 0; i < count; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('pageerror', (e) => console.error(`page ${i}:`, e));
    await page.goto(url);
    pages.push(page);
  }
  return pages;
}

async function p2pSetup({ audio, fps, participants, marker = false }) {
  const web = await pageServer();
  const browser = await launch();
  const close = async () => {
    await browser.close();
    web.close();
  };
  try {
    const pages = await newPages(browser, web.url, participants);
    for (const [i, p] of pages.entries()) await p.evaluate((o) => window.rtc.getMedia(o), { audio, fps, marker: markerOf(marker, i) });
    for (let i = 0; i < pages.length; i++) {
      for (let j = 0; j < pages.length; j++) {
        if (i === j) continue;
        const offer = await pages[i].evaluate((n) => window.rtc.offerSend(n), `to${j}`);
        const answer = await pages[j].evaluate(([n, sdp]) => window.rtc.answerRecv(n, sdp), [`from${i}`, offer]);
        await pages[i].evaluate(([n, sdp]) => window.rtc.setAnswer(n, sdp), [`to${j}`, answer]);
      }
    }
    return {
      pages,
      figures: (page) => page.evaluate(() => window.rtc.figures()),
      senderIndex: (key) => Number(key.replace(/^from/, '')),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

// ---- Janus ----------------------------------------------------------------------

/** Janus with its HTTP transport and the videoroom plugin only, on a free port. */
async function startJanus() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kolabmeet-janus-'));
  fs.writeFileSync(
    path.join(dir, 'janus.jcfg'),
    `general: { configs_folder = "${dir}", plugins_folder = "/usr/lib/x86_64-linux-gnu/janus/plugins", transports_folder = "/usr/lib/x86_64-linux-gnu/janus/transports", events_folder = "/usr/lib/x86_64-linux-gnu/janus/events", loggers_folder = "/usr/lib/x86_64-linux-gnu/janus/loggers", debug_level = 3 }
certificates: {}
media: {}
nat: { nice_debug = false, ice_enforce_list = "lo" }
plugins: { disable = "libjanus_audiobridge.so,libjanus_echotest.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so,libjanus_duktape.so,libjanus_lua.so" }
transports: { disable = "libjanus_websockets.so,libjanus_pfunix.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_rabbitmq.so" }
events: { broadcast = false }
loggers: { disable = "libjanus_jsonlog.so" }
`,
  );
  fs.writeFileSync(
    path.join(dir, 'janus.transport.http.jcfg'),
    `general: { json = "plain", base_path = "/janus", http = true, port = ${port}, ip = "127.0.0.1", https = false }\nadmin: { admin_http = false }\n`,
  );
  fs.writeFileSync(path.join(dir, 'janus.plugin.videoroom.jcfg'), 'general: {}\n');
  const proc = spawn(JANUS_BIN, ['-C', path.join(dir, 'janus.jcfg'), '-F', dir, '-o'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => (log += d));
  proc.stderr.on('data', (d) => (log += d));
  const base = `http://127.0.0.1:${port}/janus`;
  try {
    await until(
      async () => {
        try {
          return (await fetch(`${base}/info`)).ok;
        } catch {
          return false;
        }
      },
      'Janus answering',
      15000,
    );
  } catch (e) {
    proc.kill();
    throw new Error(`${e.message}; log: ${log}`);
  }
  return {
    base,
    proc,
    log: () => log,
    stop: async () => {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.on('exit', r)));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function freePort() {
  const net = require('node:net');
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A Janus session over the HTTP transport, with a long-poll loop for events. */
class JanusSession {
  constructor(base) {
    this.base = base;
    this.events = [];
    this.waiters = [];
    this.closed = false;
    this.tx = 0;
  }

  async post(url, body) {
    const res = await fetch(url, { method: 'POST', body: JSON.stringify({ transaction: `t${++this.tx}`, ...body }) });
    return res.json();
  }

  async open() {
    const r = await this.post(this.base, { janus: 'create' });
    this.id = r.data.id;
    this.loop();
  }

  async loop() {
    while (!this.closed) {
      try {
        const res = await fetch(`${this.base}/${this.id}?maxev=10`);
        let evs = await res.json();
        if (!Array.isArray(evs)) evs = [evs];
        for (const ev of evs) {
          if (ev.janus === 'keepalive') continue;
          this.events.push(ev);
        }
        this.waiters = this.waiters.filter((w) => !w());
      } catch {
        if (!this.closed) await sleep(100);
      }
    }
  }

  async attach() {
    const r = await this.post(`${this.base}/${this.id}`, { janus: 'attach', plugin: 'janus.plugin.videoroom' });
    return r.data.id;
  }

  /** A synchronous plugin request: its answer's plugin data. */
  async request(handle, body) {
    const r = await this.post(`${this.base}/${this.id}/${handle}`, { janus: 'message', body });
    if (r.janus !== 'success') throw new Error(`Janus ${body.request}: ${JSON.stringify(r)}`);
    return r.plugindata.data;
  }

  /** An asynchronous plugin request: the event answering it (plugin data and JSEP). */
  async message(handle, body, jsep) {
    const transaction = `t${++this.tx}`;
    const r = await (
      await fetch(`${this.base}/${this.id}/${handle}`, {
        method: 'POST',
        body: JSON.stringify({ janus: 'message', transaction, body, ...(jsep ? { jsep } : {}) }),
      })
    ).json();
    if (r.janus !== 'ack') throw new Error(`Janus ${body.request}: ${JSON.stringify(r)}`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Janus ${body.request}: no event`)), 20000);
      const check = () => {
        const i = this.events.findIndex((e) => e.transaction === transaction && e.janus === 'event');
        if (i < 0) return false;
        const [ev] = this.events.splice(i, 1);
        clearTimeout(timer);
        if (ev.plugindata?.data?.error) reject(new Error(`Janus ${body.request}: ${ev.plugindata.data.error}`));
        else resolve({ data: ev.plugindata?.data, jsep: ev.jsep });
        return true;
      };
      if (!check()) this.waiters.push(check);
    });
  }

  close() {
    this.closed = true;
  }
}

async function janusSetup({ audio, fps, participants, marker = false }) {
  const janus = await startJanus();
  const web = await pageServer();
  const browser = await launch();
  const session = new JanusSession(janus.base);
  const close = async () => {
    session.close();
    await browser.close();
    web.close();
    await janus.stop();
  };
  try {
    await session.open();
    const admin = await session.attach();
    const roomId = 4242;
    await session.request(admin, {
      request: 'create',
      room: roomId,
      publishers: 10,
      bitrate: 0,
      videocodec: 'vp8',
      audiocodec: 'opus',
    });
    const pages = await newPages(browser, web.url, participants);
    const feeds = [];
    for (const [i, p] of pages.entries()) {
      await p.evaluate((o) => window.rtc.getMedia(o), { audio, fps, marker: markerOf(marker, i) });
      const h = await session.attach();
      const joined = await session.message(h, { request: 'join', ptype: 'publisher', room: roomId, display: `p${i}` });
      const offer = await p.evaluate(() => window.rtc.offerSend('pub'));
      const { jsep } = await session.message(h, { request: 'publish' }, { type: 'offer', sdp: offer });
      await p.evaluate((sdp) => window.rtc.setAnswer('pub', sdp), jsep.sdp);
      feeds.push(joined.data.id);
    }
    for (const [i, p] of pages.entries()) {
      const h = await session.attach();
      const streams = feeds.filter((_, j) => j !== i).map((feed) => ({ feed }));
      // A feed can be subscribed to once its publisher's connection is up.
      let jsep;
      let data;
      for (let tries = 0; !jsep; tries++) {
        try {
          ({ jsep, data } = await session.message(h, { request: 'join', ptype: 'subscriber', room: roomId, streams }));
        } catch (e) {
          if (tries > 40 || !/No such feed/.test(e.message)) throw e;
          await sleep(250);
        }
      }
      // One connection carries both senders: each m-line's sender, from the streams the
      // subscription lists (mid, feed_id), named p<index>.
      const senderOfMid = Object.fromEntries(
        (data?.streams ?? []).filter((s) => s.mid !== undefined && feeds.includes(s.feed_id)).map((s) => [s.mid, `p${feeds.indexOf(s.feed_id)}`]),
      );
      const answer = await p.evaluate(([sdp, names]) => window.rtc.answerRecv('sub', sdp, names), [jsep.sdp, senderOfMid]);
      await session.message(h, { request: 'start' }, { type: 'answer', sdp: answer });
    }
    return {
      pages,
      figures: (page) => page.evaluate(() => window.rtc.figures()),
      senderIndex: (key) => Number(key.replace(/^p/, '')),
      pid: janus.proc.pid,
      close,
      janus,
    };
  } catch (e) {
    console.error(janus.log().slice(-4000));
    await close();
    throw e;
  }
}

const SETUPS = { kolabmeet: kolabmeetSetup, p2p: p2pSetup, janus: janusSetup };

// ---- the server's CPU and memory ------------------------------------------------

let clockTicks;
/** Clock ticks per second (`getconf CLK_TCK`), the unit of /proc/<pid>/stat's times. */
function clkTck() {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(require('node:child_process').execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** `pid` and all its descendants (through every thread's children list). */
function processTree(pid) {
  const out = [];
  const walk = (p) => {
    out.push(p);
    let tasks = [];
    try {
      tasks = fs.readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const t of tasks) {
      let children = '';
      try {
        children = fs.readFileSync(`/proc/${p}/task/${t}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const c of children.trim().split(/\s+/).filter(Boolean)) walk(Number(c));
    }
  };
  walk(pid);
  return out;
}

/**
 * Per process of the tree: its CPU ticks (utime + stime, plus cutime + cstime: children
 * it reaped) and RSS (kB), keyed by pid and start time (a pid reused is another process).
 */
function treeSample(pid) {
  const procs = new Map();
  for (const p of processTree(pid)) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
      const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); // utime stime cutime cstime
      const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
      procs.set(`${p}@${f[19]}`, { pid: p, name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), ticks, rssKiB: rss });
    } catch {
      // gone meanwhile
    }
  }
  return procs;
}

/**
 * CPU ms of the tree between two samples, RSS at the second. A process new since the
 * first counts whole; one gone since was reaped by its parent, whose cutime/cstime now
 * hold its whole life, so what it had at the first sample is taken off.
 */
function treeCpu(a, b) {
  let ticks = 0;
  let rssKiB = 0;
  for (const [k, p] of b) {
    ticks += p.ticks - (a.get(k)?.ticks ?? 0);
    rssKiB += p.rssKiB;
  }
  for (const [k, p] of a) if (!b.has(k)) ticks -= p.ticks;
  return { cpuMs: (ticks * 1000) / clkTck(), rssMiB: rssKiB / 1024, processes: [...b.values()].map((p) => p.name) };
}

// ---- the measurement ------------------------------------------------------------

const ratio = (a, b) => (b > 0 ? a / b : null);
const ms = (s) => (s === null || s === undefined ? null : s * 1000);

/** Windowed figures of one inbound stream between two cumulative samples. */
function windowed(a, b, seconds) {
  const d = (k) => (b[k] ?? 0) - (a[k] ?? 0);
  const emitted = d('jitterBufferEmittedCount');
  const out = {
    kind: b.kind,
    stream: b.pc,
    jbDelayMs: ms(ratio(d('jitterBufferDelay'), emitted)),
    jbTargetMs: ms(ratio(d('jitterBufferTargetDelay'), emitted)),
    jbMinimumMs: b.jitterBufferMinimumDelay === undefined ? null : ms(ratio(d('jitterBufferMinimumDelay'), emitted)),
    jitterMs: ms(b.jitter),
    packetsLost: d('packetsLost'),
    packetsReceived: d('packetsReceived'),
  };
  if (b.kind === 'video') {
    const decoded = d('framesDecoded');
    Object.assign(out, {
      fps: decoded / seconds,
      width: b.frameWidth,
      framesDropped: d('framesDropped'),
      decodeMs: ms(ratio(d('totalDecodeTime'), decoded)),
      assemblyMs: ms(ratio(d('totalAssemblyTime'), d('framesAssembledFromMultiplePackets'))),
      processingMs: ms(ratio(d('totalProcessingDelay'), decoded)),
      interFrameStdMs: (() => {
        const n = decoded;
        if (!(n > 1)) return null;
        const s = d('totalInterFrameDelay');
        const s2 = d('totalSquaredInterFrameDelay');
        return ms(Math.sqrt(Math.max(0, s2 / n - (s / n) ** 2)));
      })(),
      freezes: d('freezeCount'),
      nacks: d('nackCount'),
    });
  } else {
    const samples = d('totalSamplesReceived');
    out.concealedPct = samples > 0 ? (100 * d('concealedSamples')) / samples : null;
  }
  return out;
}

/** Per (receiver, sender): video minus audio jitter-buffer delay, in ms. */
function pairGaps(streams) {
  const pairs = new Map();
  for (const s of streams) {
    if (s.stream === 'sub' || s.stream === 'pub') continue; // Janus: one connection for all senders
    const key = `${s.receiver}:${s.stream.replace(/\/(audio|video)$/, '')}`;
    pairs.set(key, { ...pairs.get(key), [s.kind]: s.jbDelayMs });
  }
  return [...pairs.values()].filter((p) => p.audio != null && p.video != null).map((p) => p.video - p.audio);
}

const finite = (xs) => xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
const median = (xs) => {
  const v = finite(xs).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

/**
 * Per (receiver, sender) with both markers: the page's median video-minus-audio offset,
 * its interquartile range and pair count; over them, the median of the medians, their
 * range, and the median interquartile range.
 */
function avOffset(markers, senderIndex) {
  const pairs = [];
  markers.forEach((m, receiver) => {
    for (const s of m.senders) {
      pairs.push({ receiver, sender: senderIndex(s.sender), n: s.pairs, flashes: s.flashes, onsets: s.onsets, medianMs: s.medianMs, iqrMs: s.iqrMs });
    }
  });
  const measured = pairs.filter((p) => p.n > 0 && p.medianMs !== null);
  const medians = measured.map((p) => p.medianMs);
  return {
    pairs,
    measured: measured.length,
    medianMs: median(medians),
    minMs: medians.length ? Math.min(...medians) : null,
    maxMs: medians.length ? Math.max(...medians) : null,
    iqrMs: median(measured.map((p) => p.iqrMs)),
    // The same figure for each page's own pair played locally, without WebRTC.
    localMs: median(markers.map((m) => m.local?.medianMs)),
    audioDelayMs: markers.map((m) => m.audioDelayMs ?? 0),
    context: markers[0]?.context ?? null,
  };
}

const mean = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
  return v.length ? v.reduce((s, x) => s + x, 0) / v.length : null;
};

/**
 * Sets up `kind` ('kolabmeet', 'p2p', 'janus'), waits until every page decodes both
 * others' 640x480 video (and audio), lets it settle `warmup` s, then measures `window` s.
 * `marker`: the synthetic marker tracks instead of the fake devices (true, or the page's
 * markerStream options, e.g. { audioDelayMs: 100 }), and the audio/video offset.
 * Returns { kind, audio, streams: [...windowed per receiver stream], summary, senders,
 * markers: [per receiver page, the page's marker figures] }.
 */
async function measure(kind, { audio = true, fps = 15, participants = 3, warmup = 10, window = 20, serverEnv = {}, simulcast = false, marker = false } = {}) {
  const setup = await SETUPS[kind]({ audio, fps, participants, serverEnv, simulcast, marker });
  try {
    const others = participants - 1;
    for (const page of setup.pages) {
      await until(async () => {
        const f = await setup.figures(page);
        const v = f.inbound.filter((s) => s.kind === 'video' && s.framesDecoded > 0);
        const a = f.inbound.filter((s) => s.kind === 'audio' && s.totalSamplesReceived > 0);
        return v.length >= others && (!audio || a.length >= others);
      }, `${kind}: every remote stream decoded`);
    }
    if (marker) await Promise.all(setup.pages.map((p) => p.evaluate(() => window.markers.watchLocal())));
    await sleep(warmup * 1000);
    if (marker) await Promise.all(setup.pages.map((p) => p.evaluate(() => window.markers.reset())));
    const cpuFirst = setup.pid ? treeSample(setup.pid) : null;
    const first = await Promise.all(setup.pages.map((p) => setup.figures(p)));
    const t0 = Date.now();
    await sleep(window * 1000);
    const second = await Promise.all(setup.pages.map((p) => setup.figures(p)));
    const cpuSecond = setup.pid ? treeSample(setup.pid) : null;
    const seconds = (Date.now() - t0) / 1000;
    const markers = marker ? await Promise.all(setup.pages.map((p) => p.evaluate(() => window.markers.figures()))) : null;
    const streams = [];
    const senders = [];
    second.forEach((f, i) => {
      for (const s of f.inbound) {
        const a = first[i].inbound.find((x) => x.ssrc === s.ssrc && x.pc === s.pc);
        if (a) streams.push({ receiver: i, ...windowed(a, s, seconds) });
      }
      for (const s of f.outbound.filter((x) => x.kind === 'video')) {
        const a = first[i].outbound.find((x) => x.ssrc === s.ssrc && x.pc === s.pc);
        if (!a) continue;
        senders.push({
          sender: i,
          stream: s.pc,
          pacerMs: ms(ratio(s.totalPacketSendDelay - a.totalPacketSendDelay, s.packetsSent - a.packetsSent)),
          width: s.frameWidth,
          fps: (s.framesEncoded - a.framesEncoded) / seconds,
          limited: s.qualityLimitationReason,
        });
      }
    });
    const of = (k, field) => streams.filter((s) => s.kind === k).map((s) => s[field]);
    const summary = {
      video: {
        jbDelayMs: mean(of('video', 'jbDelayMs')),
        jbTargetMs: mean(of('video', 'jbTargetMs')),
        jbMinimumMs: mean(of('video', 'jbMinimumMs')),
        jitterMs: mean(of('video', 'jitterMs')),
        fps: mean(of('video', 'fps')),
        framesDropped: of('video', 'framesDropped').reduce((s, x) => s + x, 0),
        decodeMs: mean(of('video', 'decodeMs')),
        interFrameStdMs: mean(of('video', 'interFrameStdMs')),
        minJb: Math.min(...of('video', 'jbDelayMs')),
        maxJb: Math.max(...of('video', 'jbDelayMs')),
      },
      audio: audio
        ? {
            jbDelayMs: mean(of('audio', 'jbDelayMs')),
            jbTargetMs: mean(of('audio', 'jbTargetMs')),
            jbMinimumMs: mean(of('audio', 'jbMinimumMs')),
            jitterMs: mean(of('audio', 'jitterMs')),
          }
        : null,
      pacerMs: mean(senders.map((s) => s.pacerMs)),
      // Lip sync's share: per (receiver, sender) pair, video minus audio jitter-buffer
      // delay (the pair is known where each sender has its own streams' name).
      syncGapMs: mean(pairGaps(streams)),
      avOffset: markers ? avOffset(markers, setup.senderIndex) : null,
      cpu: null,
    };
    if (cpuFirst) {
      const packets = streams.reduce((sum, x) => sum + (x.packetsReceived ?? 0), 0);
      const c = treeCpu(cpuFirst, cpuSecond);
      summary.cpu = { ...c, packets, usPerPacket: packets > 0 ? (c.cpuMs * 1000) / packets : null, cpuPct: (100 * c.cpuMs) / (seconds * 1000) };
    }
    if (setup.layerChanges) {
      summary.layerChanges = (await Promise.all(setup.pages.map((p) => setup.layerChanges(p)))).reduce((a, b) => a + b, 0);
    }
    return { kind, audio, fps, marker, seconds, streams, senders, summary, markers, server: setup.server };
  } finally {
    await setup.close();
  }
}

module.exports = { measure, SETUPS, janusAvailable: () => fs.existsSync(JANUS_BIN), compat, processTree, treeSample, treeCpu };
