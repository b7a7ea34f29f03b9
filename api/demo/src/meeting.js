// The meeting page that kolabmeet-server serves at / (DEMO_PAGE): the Kolab client's
// flow (socket.io-client v4 for signaling, mediasoup-client v3 for media) behind a small
// plain UI. The server hands out the peer (POST /demo/join); the page never sees the
// API token. Names and chat come from other participants: they only ever reach the page
// as textContent.
import { Device } from 'mediasoup-client';
import { io } from 'socket.io-client';

const $ = (id) => document.getElementById(id);

/** Everything of one meeting; replaced on every join. */
let meeting = null;

function newMeeting(info) {
  return {
    info, // the join answer: room, roomId, peerId, nickname, query
    socket: null,
    device: null,
    sendTransport: null,
    recvTransport: null,
    producers: new Map(), // 'mic' | 'webcam' | 'screen' -> Producer
    consumers: new Map(), // consumer id -> { consumer, peerId, source, el }
    peers: new Map(), // peer id -> { nickname, raisedHand }
    raisedHand: false,
    left: false,
  };
}

function setStatus(text) {
  $(meeting && !meeting.left ? 'meeting-status' : 'lobby-status').textContent = text;
}

function request(method, data) {
  const socket = meeting.socket;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${method}`)), 20000);
    socket.emit('request', { method, data }, (err, res) => {
      clearTimeout(timer);
      if (err) reject(new Error(`${method}: ${res ?? err}`));
      else resolve(res);
    });
  });
}

// ---- tiles ----

/** The tile of a peer's source ('webcam' also carries its audio), created on demand. */
function tile(peerId, source) {
  const key = `${peerId}:${source}`;
  let el = document.querySelector(`.tile[data-key="${CSS.escape(key)}"]`);
  if (el) return el;
  el = document.createElement('div');
  el.className = 'tile';
  el.dataset.key = key;
  el.dataset.peerId = peerId;
  el.dataset.source = source;
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true;
  const label = document.createElement('div');
  label.className = 'label';
  const name = document.createElement('span');
  name.className = 'name';
  const hand = document.createElement('span');
  hand.className = 'hand';
  hand.textContent = '✋ hand raised';
  hand.title = 'raised hand';
  hand.hidden = true;
  label.append(name, hand);
  el.append(video, label);
  $('tiles').append(el);
  refreshTiles(peerId);
  return el;
}

function displayName(peerId) {
  if (peerId === meeting.info.peerId) return `${meeting.info.nickname} (you)`;
  const nickname = meeting.peers.get(peerId)?.nickname;
  return typeof nickname === 'string' && nickname ? nickname : 'guest';
}

/** Puts a peer's name and raised hand on its tiles. */
function refreshTiles(peerId) {
  const raised = peerId === meeting.info.peerId ? meeting.raisedHand : !!meeting.peers.get(peerId)?.raisedHand;
  for (const el of document.querySelectorAll(`.tile[data-peer-id="${CSS.escape(peerId)}"]`)) {
    const screen = el.dataset.source === 'screen';
    el.querySelector('.name').textContent = screen ? `${displayName(peerId)}: screen` : displayName(peerId);
    el.querySelector('.hand').hidden = screen || !raised;
    el.classList.toggle('hand-raised', !screen && raised);
  }
}

function showTrack(peerId, source, track) {
  const el = tile(peerId, source);
  if (track.kind === 'video') {
    const video = el.querySelector('video');
    video.srcObject = new MediaStream([track]);
    video.play().catch(() => {});
    return video;
  }
  const audio = document.createElement('audio');
  audio.autoplay = true;
  audio.srcObject = new MediaStream([track]);
  el.append(audio);
  audio.play().catch(() => {});
  return audio;
}

function removeTiles(peerId, source) {
  const sel = source ? `.tile[data-peer-id="${CSS.escape(peerId)}"][data-source="${source}"]` : `.tile[data-peer-id="${CSS.escape(peerId)}"]`;
  for (const el of document.querySelectorAll(sel)) el.remove();
}

// ---- chat ----

function addChat(peerId, nickname, message) {
  const li = document.createElement('li');
  const from = document.createElement('span');
  from.className = 'from';
  from.textContent = peerId === meeting.info.peerId ? 'you' : typeof nickname === 'string' && nickname ? nickname : 'guest';
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = String(message);
  li.dataset.peerId = peerId;
  li.append(from, text);
  $('chat-log').append(li);
  li.scrollIntoView({ block: 'end' });
}

// ---- signaling ----

function dropConsumer(id) {
  const c = meeting.consumers.get(id);
  if (!c) return;
  meeting.consumers.delete(id);
  c.consumer.close();
  if (c.source === 'screen' && c.consumer.kind === 'video') removeTiles(c.peerId, 'screen');
  else if (c.consumer.kind === 'audio') c.el.remove();
  else c.el.srcObject = null;
}

function onNotification({ method, data }) {
  const m = meeting;
  switch (method) {
    case 'roomReady':
      if (!m.device) setUp(data.iceServers).catch(fail);
      break;
    case 'newPeer':
      m.peers.set(data.id, { nickname: data.nickname, raisedHand: !!data.raisedHand });
      tile(data.id, 'webcam');
      refreshTiles(data.id);
      break;
    case 'peerClosed':
      m.peers.delete(data.peerId);
      for (const [id, c] of m.consumers) if (c.peerId === data.peerId) dropConsumer(id);
      removeTiles(data.peerId);
      break;
    case 'changeNickname':
      if (m.peers.has(data.peerId)) m.peers.get(data.peerId).nickname = data.nickname;
      refreshTiles(data.peerId);
      break;
    case 'changeRaisedHand':
      if (data.peerId === m.info.peerId) m.raisedHand = !!data.raisedHand;
      else if (m.peers.has(data.peerId)) m.peers.get(data.peerId).raisedHand = !!data.raisedHand;
      if (data.peerId === m.info.peerId) pressed('toggle-hand', m.raisedHand, 'Lower hand', 'Raise hand');
      refreshTiles(data.peerId);
      break;
    case 'chatMessage':
      addChat(data.peerId, data.nickname, data.message);
      break;
    case 'consumerClosed':
      dropConsumer(data.consumerId);
      break;
    case 'consumerPaused':
      m.consumers.get(data.consumerId)?.consumer.pause();
      break;
    case 'consumerResumed':
      m.consumers.get(data.consumerId)?.consumer.resume();
      break;
    case 'moderator:kickPeer':
    case 'moderator:closeRoom':
      leave('The meeting was ended for you.');
      break;
    default:
      break;
  }
}

async function onServerRequest({ method, data }, ack) {
  if (method !== 'newConsumer') return ack(400, `unknown request ${method}`);
  const m = meeting;
  try {
    const consumer = await m.recvTransport.consume({
      id: data.id,
      producerId: data.producerId,
      kind: data.kind,
      rtpParameters: data.rtpParameters,
    });
    const source = data.appData?.source === 'screen' ? 'screen' : 'webcam';
    const el = showTrack(data.peerId, source, consumer.track);
    m.consumers.set(data.id, { consumer, peerId: data.peerId, source, el });
    ack();
  } catch (e) {
    ack(500, String(e));
  }
}

function wireTransport(transport) {
  transport.on('connect', ({ dtlsParameters }, callback, errback) => {
    request('connectWebRtcTransport', { transportId: transport.id, dtlsParameters }).then(callback, errback);
  });
  transport.on('connectionstatechange', (state) => {
    if (state === 'failed') setStatus('The media connection failed.');
  });
}

/** Camera and microphone, or what of them there is. */
async function localMedia() {
  const video = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 24 } };
  for (const constraints of [{ audio: true, video }, { audio: false, video }, { audio: true, video: false }]) {
    try {
      return await navigator.mediaDevices.getUserMedia(constraints);
    } catch (e) {
      // Try with less.
    }
  }
  setStatus('No camera or microphone: you can see and hear the others, but not be seen or heard.');
  return null;
}

/** The Kolab flow after roomReady: device, transports, join, then webcam and microphone. */
async function setUp(iceServers) {
  const m = meeting;
  m.device = new Device();
  await m.device.load({ routerRtpCapabilities: await request('getRouterRtpCapabilities') });
  const sendInfo = await request('createWebRtcTransport', { forceTcp: false, producing: true, consuming: false });
  m.sendTransport = m.device.createSendTransport({ ...sendInfo, iceServers: iceServers ?? [] });
  wireTransport(m.sendTransport);
  m.sendTransport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
    request('produce', { transportId: m.sendTransport.id, kind, rtpParameters, appData }).then(({ id }) => callback({ id }), errback);
  });
  const recvInfo = await request('createWebRtcTransport', { forceTcp: false, producing: false, consuming: true });
  m.recvTransport = m.device.createRecvTransport({ ...recvInfo, iceServers: iceServers ?? [] });
  wireTransport(m.recvTransport);
  const joined = await request('join', { nickname: m.info.nickname, rtpCapabilities: m.device.rtpCapabilities });
  for (const p of joined.peers ?? []) {
    m.peers.set(p.id, { nickname: p.nickname, raisedHand: !!p.raisedHand });
    // Its tile may exist already: consumers can arrive before the join's answer.
    tile(p.id, 'webcam');
    refreshTiles(p.id);
  }
  const own = tile(m.info.peerId, 'webcam');
  own.classList.add('local');
  $('tiles').prepend(own);
  const stream = await localMedia();
  const videoTrack = stream?.getVideoTracks()[0];
  const audioTrack = stream?.getAudioTracks()[0];
  if (videoTrack) {
    own.querySelector('video').srcObject = new MediaStream([videoTrack]);
    const encodings = [{ scaleResolutionDownBy: 2, maxBitrate: 200000 }, { scaleResolutionDownBy: 1, maxBitrate: 800000 }];
    m.producers.set('webcam', await m.sendTransport.produce({ track: videoTrack, encodings, appData: { source: 'webcam' } }));
  }
  if (audioTrack) {
    m.producers.set('mic', await m.sendTransport.produce({ track: audioTrack, appData: { source: 'mic' } }));
  }
  $('toggle-cam').disabled = !videoTrack;
  $('toggle-mic').disabled = !audioTrack;
  $('meeting').dataset.state = 'joined';
}

function fail(e) {
  setStatus(`Something went wrong: ${e.message ?? e}`);
}

// ---- controls ----

function pressed(id, on, onText, offText) {
  const b = $(id);
  b.setAttribute('aria-pressed', String(on));
  b.textContent = on ? onText : offText;
}

async function togglePaused(source, button, onText, offText) {
  const p = meeting?.producers.get(source);
  if (!p) return;
  const pause = !p.paused;
  if (pause) p.pause();
  else p.resume();
  pressed(button, pause, onText, offText);
  await request(pause ? 'pauseProducer' : 'resumeProducer', { producerId: p.id });
}

async function stopScreen() {
  const p = meeting.producers.get('screen');
  if (!p) return;
  meeting.producers.delete('screen');
  p.close();
  p.track?.stop();
  removeTiles(meeting.info.peerId, 'screen');
  pressed('toggle-screen', false, 'Stop sharing', 'Share screen');
  await request('closeProducer', { producerId: p.id });
}

async function toggleScreen() {
  const m = meeting;
  if (!m?.sendTransport) return;
  if (m.producers.has('screen')) return stopScreen();
  const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  const track = stream.getVideoTracks()[0];
  track.addEventListener('ended', () => stopScreen().catch(fail));
  m.producers.set('screen', await m.sendTransport.produce({ track, appData: { source: 'screen' } }));
  tile(m.info.peerId, 'screen').querySelector('video').srcObject = new MediaStream([track]);
  pressed('toggle-screen', true, 'Stop sharing', 'Share screen');
}

function leave(why = '') {
  const m = meeting;
  if (!m || m.left) return;
  m.left = true;
  for (const p of m.producers.values()) {
    p.close();
    p.track?.stop();
  }
  m.sendTransport?.close();
  m.recvTransport?.close();
  // An intentional disconnect: the server closes the peer at once.
  m.socket?.disconnect();
  $('tiles').replaceChildren();
  $('chat-log').replaceChildren();
  $('meeting').hidden = true;
  $('lobby').hidden = false;
  $('lobby-status').textContent = why;
  $('join').disabled = false;
}

// ---- joining ----

async function join(event) {
  event.preventDefault();
  $('join').disabled = true;
  $('lobby-status').textContent = 'Joining…';
  let info;
  try {
    const res = await fetch('/demo/join', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ room: $('room').value, nickname: $('nickname').value }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.error ?? `the server answered ${res.status}`);
    info = body;
  } catch (e) {
    $('lobby-status').textContent = `Cannot join: ${e.message}`;
    $('join').disabled = false;
    return;
  }
  meeting = newMeeting(info);
  location.hash = encodeURIComponent(info.room);
  $('room-title').textContent = info.room;
  $('meeting-status').textContent = '';
  $('lobby').hidden = true;
  $('meeting').hidden = false;
  $('meeting').dataset.state = 'joining';
  for (const [id, on, off] of [['toggle-mic', 'Unmute', 'Mute'], ['toggle-cam', 'Start camera', 'Stop camera'], ['toggle-screen', 'Stop sharing', 'Share screen'], ['toggle-hand', 'Lower hand', 'Raise hand']]) {
    pressed(id, false, on, off);
  }
  const socket = io(location.origin, { path: '/meetmedia/signaling', transports: ['websocket'], query: info.query, reconnection: false });
  meeting.socket = socket;
  socket.on('notification', onNotification);
  socket.on('request', onServerRequest);
  socket.on('connect_error', (e) => leave(`Cannot connect: ${e.message}`));
  socket.on('disconnect', (reason) => {
    if (reason !== 'io client disconnect') leave(`Disconnected (${reason}).`);
  });
}

function start() {
  let room = '';
  try {
    room = decodeURIComponent(location.hash.slice(1));
  } catch (e) {
    // A malformed hash: no room prefilled.
  }
  if (room) $('room').value = room;
  $('join-form').addEventListener('submit', join);
  $('toggle-mic').addEventListener('click', () => togglePaused('mic', 'toggle-mic', 'Unmute', 'Mute').catch(fail));
  $('toggle-cam').addEventListener('click', () => togglePaused('webcam', 'toggle-cam', 'Start camera', 'Stop camera').catch(fail));
  $('toggle-screen').addEventListener('click', () => toggleScreen().catch(fail));
  $('toggle-hand').addEventListener('click', () => {
    if (meeting?.device) request('raisedHand', { raisedHand: !meeting.raisedHand }).catch(fail);
  });
  $('leave').addEventListener('click', () => leave());
  $('chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('chat-input');
    const message = input.value.trim();
    if (!message || !meeting?.device) return;
    input.value = '';
    request('chatMessage', { message }).catch(fail);
  });
}

start();
