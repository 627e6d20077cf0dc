// The kvs-js agent's page: the service's own JavaScript SDK (KVSWebRTC, from the npm package
// amazon-kinesis-video-streams-webrtc) and the AWS SDK v3 Kinesis Video clients (window.AWS)
// do what the SDK's examples/viewer.js and master.js do: describe the channel, get its
// endpoints and ICE servers, presign and open the signaling WebSocket, offer or answer,
// trickle candidates, open a data channel. Loaded after peer.js, whose getStats() report,
// outcome wait and "done" handshake it reuses, so that the lab reads both pages alike.
"use strict";

const kvsjs = Object.create(icelab);

Object.assign(kvsjs, {
  serviceCalls: [],
  endpoints: null,
  iceServerUris: [],

  // One SDK call, timed and kept for the observations (as the sample times them).
  async call(client, operation, input) {
    const started = this.elapsed();
    const entry = { operation, t_s: started };
    this.serviceCalls.push(entry);
    try {
      const output = await client.send(new operation.command(input));
      entry.duration_s = Math.round((this.elapsed() - started) * 1000) / 1000;
      entry.ok = true;
      return output;
    } catch (error) {
      entry.duration_s = Math.round((this.elapsed() - started) * 1000) / 1000;
      entry.ok = false;
      entry.error = `${error.name || "Error"}: ${error.message || error}`;
      throw new Error(`${operation.name}: ${entry.error}`);
    } finally {
      entry.operation = operation.name;
    }
  },

  credentials(config) {
    return { accessKeyId: config.access_key_id, secretAccessKey: config.secret_access_key };
  },

  // Control plane and signaling HTTPS endpoint, as examples/viewer.js calls them.
  async connectService(config) {
    const kinesisVideoClient = new AWS.KinesisVideo.KinesisVideoClient({
      region: config.region,
      credentials: this.credentials(config),
      endpoint: config.endpoint,
      correctClockSkew: true,
    });
    this.kinesisVideoClient = kinesisVideoClient;
    const describe = await this.call(
      kinesisVideoClient,
      { name: "DescribeSignalingChannel", command: AWS.KinesisVideo.DescribeSignalingChannelCommand },
      { ChannelName: config.channel_name },
    );
    this.channelARN = describe.ChannelInfo.ChannelARN;
    const role = config.role === "viewer" ? KVSWebRTC.Role.VIEWER : KVSWebRTC.Role.MASTER;
    const endpointResponse = await this.call(
      kinesisVideoClient,
      {
        name: "GetSignalingChannelEndpoint",
        command: AWS.KinesisVideo.GetSignalingChannelEndpointCommand,
      },
      {
        ChannelARN: this.channelARN,
        SingleMasterChannelEndpointConfiguration: { Protocols: ["WSS", "HTTPS"], Role: role },
      },
    );
    this.endpoints = {};
    for (const endpoint of endpointResponse.ResourceEndpointList) {
      this.endpoints[endpoint.Protocol] = endpoint.ResourceEndpoint;
    }
    const signalingChannelsClient = new AWS.KinesisVideoSignaling.KinesisVideoSignalingClient({
      region: config.region,
      credentials: this.credentials(config),
      endpoint: this.endpoints.HTTPS,
      correctClockSkew: true,
    });
    const iceConfig = await this.call(
      signalingChannelsClient,
      {
        name: "GetIceServerConfig",
        command: AWS.KinesisVideoSignaling.GetIceServerConfigCommand,
      },
      { ChannelARN: this.channelARN }, // as both samples ask: no ClientId, no Service
    );
    return this.iceServers(config, iceConfig.IceServerList || []);
  },

  // STUN + TURN as the sample builds them for the NAT traversal mode (its natTraversalDisabled,
  // forceTURN and forceSTUN). The sample's STUN server is stun.kinesisvideo.<region>.amazonaws.com:443;
  // the lab passes the run's STUN URL instead (config.stun_urls).
  iceServers(config, iceServerList) {
    const servers = [];
    const traversal = config.nat_traversal;
    if (traversal === "stun-turn" || traversal === "stun-only") {
      const stun = config.stun_urls || [`stun:stun.kinesisvideo.${config.region}.amazonaws.com:443`];
      for (const url of stun) servers.push({ urls: url });
    }
    if (traversal === "stun-turn" || traversal === "turn-only") {
      for (const server of iceServerList) {
        servers.push({ urls: server.Uris, username: server.Username, credential: server.Password });
        this.iceServerUris.push(...server.Uris);
      }
    }
    return servers;
  },

  signalingClient(config) {
    const viewer = config.role === "viewer";
    return new KVSWebRTC.SignalingClient({
      channelARN: this.channelARN,
      channelEndpoint: this.endpoints.WSS,
      clientId: viewer ? config.client_id : undefined,
      role: viewer ? KVSWebRTC.Role.VIEWER : KVSWebRTC.Role.MASTER,
      region: config.region,
      credentials: this.credentials(config),
      systemClockOffset: this.kinesisVideoClient.config.systemClockOffset,
    });
  },

  openSignaling(timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`signaling: no connection within ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
      this.client.on("open", () => {
        clearTimeout(timer);
        resolve();
      });
      this.client.on("error", (error) => {
        clearTimeout(timer);
        this.note(`signaling error: ${error && error.message ? error.message : error}`);
        reject(new Error("signaling: the WebSocket failed (refused, or TLS not trusted)"));
      });
      this.client.on("close", () => this.note("signaling closed"));
      this.client.open();
    });
  },

  async run(config) {
    this.started = performance.now();
    this.config = config;
    const timing = config.timing;
    try {
      const iceServers = await this.connectService(config);
      this.note(`ICE servers: ${JSON.stringify(iceServers.map((s) => s.urls))}`);
      this.pc = this.createPeerConnection(config, iceServers);
      this.client = this.signalingClient(config);
      const negotiated = config.role === "viewer" ? this.offer() : this.answer();
      await this.openSignaling(timing.signaling_timeout_s * 1000);
      this.note("signaling connected");
      const { success } = await negotiated;
      await this.waitOutcome(success, timing.check_timeout_s * 1000);
      await this.settlePairs(timing.settle_s * 1000);
      await this.finish();
    } catch (error) {
      this.error = this.error || String(error.message || error);
      this.note(`error: ${this.error}`);
    }
    const report = await this.report();
    this.close();
    return report;
  },

  async report() {
    const report = await icelab.report.call(this);
    return Object.assign(report, {
      service_calls: this.serviceCalls,
      endpoints: this.endpoints,
      ice_server_uris: this.iceServerUris,
      channel_arn: this.channelARN || null,
    });
  },

  createPeerConnection(config, iceServers) {
    const pc = new RTCPeerConnection({
      iceServers,
      iceTransportPolicy: config.nat_traversal === "turn-only" ? "relay" : "all",
    });
    pc.addEventListener("icecandidate", ({ candidate }) => {
      // The sample trickles every candidate and sends nothing at the end of gathering.
      if (!candidate || !candidate.candidate) return;
      this.localCandidates.push(candidate.candidate);
      this.client.sendIceCandidate(candidate, this.viewerId);
    });
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
      this.iceStates.push({ t_s: this.elapsed(), state: pc.iceConnectionState });
      this.note(`ICE connection state: ${pc.iceConnectionState}`);
    };
    pc.onicegatheringstatechange = () => {
      this.gatheringStates.push({ t_s: this.elapsed(), state: pc.iceGatheringState });
    };
    return pc;
  },

  // The SDK emits a remote candidate only after the offer or answer it belongs to, and
  // setRemoteDescription was called first, so addIceCandidate queues behind it.
  addRemoteCandidate(candidate) {
    if (candidate && candidate.candidate) this.remoteCandidates.push(candidate.candidate);
    this.pc.addIceCandidate(candidate).catch((error) => {
      this.note(`remote candidate refused: ${candidate && candidate.candidate}: ${error}`);
    });
  },

  // The offer or answer from the other peer. setRemoteDescription is called inside the
  // SDK's event, as the sample calls it: the SDK emits the candidates it held back right
  // after, and each addIceCandidate then queues behind the description.
  waitDescription(event, timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("timed out waiting for the other peer")),
        timeoutMs,
      );
      let received = false; // one call per run: a second offer or answer is ignored
      this.client.on(event, (description, sender) => {
        if (received) return this.note(`another ${event} ignored`);
        received = true;
        clearTimeout(timer);
        if (sender && this.config.role === "master") this.viewerId = sender;
        resolve({ sender, remoteSet: this.pc.setRemoteDescription(description) });
      });
    });
  },

  // The viewer (examples/viewer.js): data channel, offer once signaling is open, answer.
  async offer() {
    const channel = this.pc.createDataChannel("kvsDataChannel");
    this.channel = channel;
    const echoed = new Promise((resolve) => {
      channel.onmessage = (event) => {
        if (event.data === PING) resolve();
        this.onChannelMessage(event.data);
      };
    });
    channel.onopen = () => channel.send(PING);
    channel.onclose = () => this.peerGone && this.peerGone();
    this.client.on("iceCandidate", (candidate) => this.addRemoteCandidate(candidate));
    const timeoutMs = this.config.timing.signaling_timeout_s * 1000;
    await new Promise((resolve) => this.client.on("open", resolve));
    const answer = this.waitDescription("sdpAnswer", timeoutMs);
    await this.pc.setLocalDescription(
      await this.pc.createOffer({ offerToReceiveAudio: true, offerToReceiveVideo: true }),
    );
    this.client.sendSdpOffer(this.pc.localDescription);
    this.note("offer sent");
    await (await answer).remoteSet;
    return { success: echoed }; // wrapped: an async function would wait for it
  },

  // The master (examples/master.js with answerer.js): answer the viewer's offer, echo.
  async answer() {
    const timeoutMs = this.config.timing.signaling_timeout_s * 1000;
    const offered = this.waitDescription("sdpOffer", timeoutMs);
    this.client.on("iceCandidate", (candidate) => this.addRemoteCandidate(candidate));
    const pinged = new Promise((resolve) => {
      this.pc.ondatachannel = (event) => {
        const channel = event.channel;
        this.channel = channel;
        channel.onmessage = (message) => {
          if (message.data === PING) {
            channel.send(PING);
            resolve();
          }
          this.onChannelMessage(message.data);
        };
        channel.onclose = () => this.peerGone && this.peerGone();
      };
    });
    const { sender, remoteSet } = await offered;
    await remoteSet;
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    this.client.sendSdpAnswer(this.pc.localDescription, sender);
    this.note("answer sent");
    return { success: pinged };
  },

  close() {
    if (this.pc) this.pc.close();
    if (this.client) this.client.close();
  },
});

window.icelab = kvsjs;
// The lab calls kvsjs.run(): `icelab` names peer.js's own object in the page's global scope.
window.kvsjs = kvsjs;
