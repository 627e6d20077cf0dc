// One side of the call in the browser: the viewer offers and opens the data channel, the
// master answers and echoes. Same protocol as the aiortc peer (lab/peers/aiortc.py): a
// ping echoed over the data channel means "connected"; "ice-lab done" means "I have
// finished watching my pairs; you may close". Candidates are trickled over signaling, as
// the KVS JavaScript SDK does.
"use strict";

const PING = "ice-lab ping";
const DONE = "ice-lab done";
// Firefox also ends a pair as "cancelled" (nICEr stopped checking it).
const FINAL_PAIR_STATES = new Set(["succeeded", "failed", "cancelled"]);
// An ongoing call (the scenario's `call`): numbered messages the master echoes, as
// lab/peers/call_traffic.py sends them.
const CALL_PREFIX = "ice-lab call ";
const SAMPLE_MS = 100;
const RESTART_GAP_MS = 5000;
const epoch = () => (performance.timeOrigin + performance.now()) / 1000;

const icelab = {
  started: performance.now(),
  pc: null,
  log: [],
  iceStates: [],
  gatheringStates: [],
  candidateErrors: [],
  localCandidates: [],
  remoteCandidates: [],
  connectedS: null,
  echo: false,
  error: null,
  outcomeAt: null,
  signaling: null,
  call: null, // {started_at, ended_at, interval_s, sent_at, echoed_at, selected}
  callUpAt: null, // when this peer's call began: the lab starts its events' clock

  elapsed() {
    return Math.round(performance.now() - this.started) / 1000;
  },

  note(text) {
    this.log.push(`${this.elapsed().toFixed(3)} ${text}`);
  },

  // Everything the page saw, for lab/peers/chromium_stats.py to turn into observations.
  async report() {
    const stats = this.pc ? Array.from((await this.pc.getStats()).values()) : [];
    return {
      stats,
      ice_states: this.iceStates,
      gathering_states: this.gatheringStates,
      candidate_errors: this.candidateErrors,
      local_candidates: this.localCandidates,
      remote_candidates: this.remoteCandidates,
      connected_s: this.connectedS,
      echo: this.echo,
      error: this.error,
      outcome_s: this.outcomeAt,
      call: this.call && { ...this.call, gathering: this.gatheringStates },
      ice_state: this.pc ? this.pc.iceConnectionState : null,
      log: this.log,
    };
  },

  async run(config) {
    this.started = performance.now();
    this.config = config;
    const timing = config.timing;
    try {
      this.signaling = new KvsSignaling(config.signaling_url);
      await this.signaling.open(timing.signaling_timeout_s * 1000);
      this.note("signaling connected");
      this.pc = this.createPeerConnection(config);
      const { success } = config.role === "viewer" ? await this.offer() : await this.answer();
      await this.waitOutcome(success, timing.check_timeout_s * 1000);
      await this.settlePairs(timing.settle_s * 1000);
      if (config.call && this.echo) await this.holdCall(config.call);
      await this.finish();
    } catch (error) {
      this.error = this.error || String(error.message || error);
      this.note(`error: ${this.error}`);
    }
    const report = await this.report();
    this.close();
    return report;
  },

  createPeerConnection(config) {
    const pc = new RTCPeerConnection({
      iceServers: config.ice_servers,
      iceTransportPolicy: config.ice_transport_policy,
    });
    this.pendingRemote = [];
    this.remoteSet = false;
    pc.onicecandidate = (event) => this.sendCandidate(event.candidate);
    pc.onicecandidateerror = (event) => {
      this.candidateErrors.push({
        url: event.url,
        error_code: event.errorCode,
        error_text: event.errorText,
        address: event.address,
        port: event.port,
        t_s: this.elapsed(),
      });
    };
    pc.oniceconnectionstatechange = () => {
      const state = pc.iceConnectionState;
      this.iceStates.push({ t_s: this.elapsed(), state, at: epoch() });
      this.note(`ICE connection state: ${state}`);
      if (state === "disconnected" || state === "failed") this.maybeRestartIce(state);
    };
    pc.onicegatheringstatechange = () => {
      this.gatheringStates.push({ t_s: this.elapsed(), state: pc.iceGatheringState, at: epoch() });
    };
    this.signaling.on("ICE_CANDIDATE", (event) => {
      if (event.payload && event.payload.candidate) this.remoteCandidates.push(event.payload.candidate);
      this.receiveCandidate(event.payload);
    });
    return pc;
  },

  sendCandidate(candidate) {
    const peer = this.config.role === "master" ? this.viewerId : null;
    if (candidate) {
      this.localCandidates.push(candidate.candidate);
      this.signaling.send("ICE_CANDIDATE", candidate.toJSON(), peer);
    } else if (this.config.send_end_of_candidates) {
      // End-of-candidates (an empty candidate, as RFC 8838 and W3C define it), so that the
      // other agent may conclude; the KVS JavaScript SDK sends nothing here.
      this.signaling.send("ICE_CANDIDATE", { candidate: "", sdpMid: "0", sdpMLineIndex: 0 }, peer);
    }
  },

  async receiveCandidate(payload) {
    if (!payload) return;
    if (!this.remoteSet) {
      this.pendingRemote.push(payload);
      return;
    }
    try {
      await this.pc.addIceCandidate(payload);
    } catch (error) {
      this.note(`remote candidate refused: ${payload.candidate}: ${error}`);
    }
  },

  async remoteDescriptionSet() {
    this.remoteSet = true;
    const pending = this.pendingRemote.splice(0);
    for (const payload of pending) await this.receiveCandidate(payload);
  },

  waitFor(type, timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("timed out waiting for the other peer")),
        timeoutMs,
      );
      this.signaling.on(type, (event) => {
        clearTimeout(timer);
        resolve(event);
      });
    });
  },

  // The viewer: offer, data channel, ping; resolves the returned promise on the echo.
  async offer() {
    const channel = this.pc.createDataChannel("ice-lab");
    this.channel = channel;
    const echoed = new Promise((resolve) => {
      channel.onmessage = (event) => {
        if (event.data === PING) resolve();
        else if (this.call && String(event.data).startsWith(CALL_PREFIX)) this.onEcho(event.data);
        this.onChannelMessage(event.data);
      };
    });
    channel.onopen = () => channel.send(PING);
    channel.onclose = () => this.peerGone && this.peerGone();
    const answer = this.waitFor("SDP_ANSWER", this.config.timing.signaling_timeout_s * 1000);
    await this.pc.setLocalDescription(await this.pc.createOffer());
    this.signaling.send("SDP_OFFER", this.pc.localDescription.toJSON(), null);
    this.note("offer sent");
    const { payload } = await answer;
    await this.pc.setRemoteDescription(payload);
    await this.remoteDescriptionSet();
    return { success: echoed }; // wrapped: an async function would wait for it
  },

  // The master: answer the viewer's offer, echo its ping.
  async answer() {
    const { sender, payload } = await this.waitFor(
      "SDP_OFFER",
      this.config.timing.signaling_timeout_s * 1000,
    );
    this.viewerId = sender;
    const pinged = new Promise((resolve) => {
      this.pc.ondatachannel = (event) => {
        const channel = event.channel;
        this.channel = channel;
        channel.onmessage = (message) => {
          if (message.data === PING) {
            channel.send(PING);
            resolve();
          } else if (String(message.data).startsWith(CALL_PREFIX)) {
            channel.send(message.data);
          }
          this.onChannelMessage(message.data);
        };
        channel.onclose = () => this.peerGone && this.peerGone();
      };
    });
    await this.pc.setRemoteDescription(payload);
    await this.remoteDescriptionSet();
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    this.signaling.send("SDP_ANSWER", this.pc.localDescription.toJSON(), sender);
    this.note("answer sent");
    // A later offer is the viewer restarting ICE: answer it too.
    this.signaling.on("SDP_OFFER", (event) => this.answerRestart(event));
    return { success: pinged };
  },

  // Keep the call going for its duration: the viewer sends, the master echoes; both watch
  // the selected pair. Times are epoch seconds, to line up with the lab's events.
  async holdCall(call) {
    const sends = this.config.role === "viewer";
    const intervalMs = 1000 / call.messages_per_s;
    this.call = {
      started_at: epoch(),
      ended_at: null,
      interval_s: intervalMs / 1000,
      sent_at: [],
      echoed_at: [],
      selected: [],
      restarts: [],
      ice_restart_supported: true,
      consent: [], // {at, unanswered, consent_requests_sent}: checks on the selected pair
    };
    const pauses = (call.pauses || []).map((p) => [p.at_s * 1000, (p.at_s + p.for_s) * 1000]);
    const callStart = performance.now();
    this.callUpAt = this.call.started_at;
    const deadline = performance.now() + call.duration_s * 1000;
    let nextSend = performance.now();
    let nextSample = performance.now();
    while (performance.now() < deadline) {
      const now = performance.now();
      const paused = pauses.some(([start, end]) => start <= now - callStart && now - callStart < end);
      if (sends && now >= nextSend) {
        const sequence = this.call.sent_at.length;
        if (!paused) {
          this.call.sent_at.push(epoch());
          this.call.echoed_at.push(null);
          if (this.channel && this.channel.readyState === "open") {
            this.channel.send(`${CALL_PREFIX}${sequence} `.padEnd(call.message_bytes, "."));
          }
        }
        nextSend += intervalMs;
      }
      if (now >= nextSample) {
        await this.sampleSelectedPair();
        nextSample += SAMPLE_MS;
      }
      const wait = Math.min(sends ? nextSend : deadline, nextSample) - performance.now();
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));
    }
    this.call.ended_at = epoch();
  },

  // The viewer (the offering side) restarts ICE when the call's connection is lost, if
  // the scenario's call says the application does (`call.ice_restart`); at most once
  // per RESTART_GAP_MS, as an application would back off.
  async maybeRestartIce(state) {
    const call = this.config && this.config.call;
    if (!this.call || !call || !call.ice_restart || this.config.role !== "viewer") return;
    const now = performance.now();
    if (this.lastRestart && now - this.lastRestart < RESTART_GAP_MS) return;
    this.lastRestart = now;
    this.call.restarts.push({ at: epoch(), kind: "restart", reason: `ICE ${state}` });
    this.note(`restarting ICE (${state})`);
    this.signaling.on("SDP_ANSWER", async ({ payload }) => {
      await this.pc.setRemoteDescription(payload);
      this.note("restart answered");
    });
    // The event that lost the connection may have killed the signaling WebSocket too (a
    // NAT that forgot its mappings resets the TCP connection on its next packet): connect
    // again first, as an application must, or the new offer is lost with it.
    try {
      this.signaling.socket.onclose = null;
      this.signaling.socket.close();
      await this.signaling.open(this.config.timing.signaling_timeout_s * 1000);
      this.call.restarts.push({ at: epoch(), kind: "signaling", reason: "signaling connected again" });
    } catch (error) {
      this.note(`signaling could not reconnect: ${error.message}`);
      return;
    }
    this.pc.restartIce();
    await this.pc.setLocalDescription(await this.pc.createOffer({ iceRestart: true }));
    this.signaling.send("SDP_OFFER", this.pc.localDescription.toJSON(), null);
  },

  async answerRestart({ sender, payload }) {
    if (this.call) {
      this.call.restarts.push({ at: epoch(), kind: "answer", reason: "the viewer's new offer" });
    }
    this.note("answering an ICE restart");
    await this.pc.setRemoteDescription(payload);
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    this.signaling.send("SDP_ANSWER", this.pc.localDescription.toJSON(), sender);
  },

  onEcho(data) {
    const sequence = Number.parseInt(data.slice(CALL_PREFIX.length), 10);
    if (sequence >= 0 && sequence < this.call.echoed_at.length) {
      if (this.call.echoed_at[sequence] === null) this.call.echoed_at[sequence] = epoch();
    }
  },

  async sampleSelectedPair() {
    const stats = new Map();
    (await this.pc.getStats()).forEach((entry) => stats.set(entry.id, entry));
    const transport = Array.from(stats.values()).find((s) => s.type === "transport");
    // Firefox has no transport entry: it marks its selected pair `selected` instead.
    const pair =
      (transport && stats.get(transport.selectedCandidatePairId)) ||
      Array.from(stats.values()).find((s) => s.type === "candidate-pair" && s.selected);
    let text = null;
    if (pair) {
      const local = stats.get(pair.localCandidateId) || {};
      const remote = stats.get(pair.remoteCandidateId) || {};
      text = `${local.candidateType} ${local.address}:${local.port} -> ${remote.candidateType} ${remote.address}:${remote.port}`;
    }
    const selected = this.call.selected;
    if (!selected.length || selected[selected.length - 1].pair !== text) {
      selected.push({ at: epoch(), pair: text });
    }
    if (pair) this.trackConsent(pair);
  },

  // Consent freshness (RFC 7675) as the browser's stats show it: the checks on the
  // selected pair sent since its last answer, and its consent request counter. Chromium
  // reports no consent event of its own; an entry is written whenever either changes.
  trackConsent(pair) {
    // Firefox counts no checks (no requestsSent): it leaves no consent record, and the
    // lab says it does not know rather than that every check was answered.
    if (pair.requestsSent === undefined) return;
    this.consentMarks = this.consentMarks || {};
    const mark = this.consentMarks[pair.id];
    if (!mark || pair.responsesReceived > mark.responses) {
      this.consentMarks[pair.id] = { responses: pair.responsesReceived, requests: pair.requestsSent };
    }
    const unanswered = pair.requestsSent - this.consentMarks[pair.id].requests;
    const sent = pair.consentRequestsSent ?? null;
    const consent = this.call.consent;
    const last = consent.length ? consent[consent.length - 1] : null;
    const changed = !last || last.pair_id !== pair.id || last.unanswered !== unanswered;
    if (changed || last.consent_requests_sent !== sent) {
      consent.push({ at: epoch(), pair_id: pair.id, unanswered, consent_requests_sent: sent });
    }
  },

  onChannelMessage(data) {
    if (data !== DONE) return;
    this.peerDoneSeen = true;
    if (this.peerDone) this.peerDone();
  },

  // Until data flowed, ICE failed, or the check timeout ran out.
  async waitOutcome(success, timeoutMs) {
    let timer;
    const failed = new Promise((resolve) => {
      const watch = () => {
        if (this.pc.iceConnectionState === "failed") resolve("failed");
      };
      this.pc.addEventListener("iceconnectionstatechange", watch);
    });
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const outcome = await Promise.race([success.then(() => "echo"), failed, timeout]);
    clearTimeout(timer);
    this.outcomeAt = this.elapsed();
    if (outcome === "echo") {
      this.echo = true;
      this.connectedS = this.outcomeAt;
    } else if (outcome === "timeout") {
      this.error = `no pair connected within the ${timeoutMs / 1000} s check timeout`;
    } else {
      this.error = "ICE failed";
    }
    this.note(`outcome: ${outcome}`);
  },

  // Give the pairs still checking the profile's budget to reach a final state; Chromium's
  // own timeouts (tens of seconds) cannot be set from a page.
  async settlePairs(budgetMs) {
    const deadline = performance.now() + budgetMs;
    while (performance.now() < deadline) {
      const stats = Array.from((await this.pc.getStats()).values());
      const pairs = stats.filter((s) => s.type === "candidate-pair");
      if (pairs.length && pairs.every((p) => FINAL_PAIR_STATES.has(p.state))) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  },

  // Tell the other peer we are done and wait (bounded) until it is too, so that its checks
  // still get answers while it settles its pairs.
  async finish() {
    if (!this.channel || this.channel.readyState !== "open") return;
    const waitMs = (this.config.timing.settle_s + 0.5) * 1000;
    const done = new Promise((resolve) => {
      if (this.peerDoneSeen) resolve();
      this.peerDone = resolve;
      this.peerGone = resolve;
      setTimeout(resolve, waitMs);
    });
    this.channel.send(DONE);
    await done;
  },

  close() {
    if (this.pc) this.pc.close();
    if (this.signaling) this.signaling.close();
  },
};

window.icelab = icelab;
