// The KVS signaling protocol as the service's JavaScript SDK speaks it: one WebSocket,
// JSON frames whose messagePayload is base64 of JSON (../shared/KVS.md).
"use strict";

class KvsSignaling {
  constructor(url) {
    this.url = url;
    this.handlers = {};
    this.correlation = 0;
    this.waiting = [];
  }

  open(timeoutMs) {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url);
      const timer = setTimeout(() => {
        socket.close();
        reject(new Error(`signaling: no connection within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      socket.onopen = () => {
        clearTimeout(timer);
        resolve();
      };
      socket.onerror = () => {
        clearTimeout(timer);
        reject(new Error("signaling: the WebSocket failed (refused, or TLS not trusted)"));
      };
      socket.onmessage = (event) => this.dispatch(event.data);
      socket.onclose = () => this.emit("close", null);
      this.socket = socket;
    });
  }

  dispatch(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch (error) {
      return;
    }
    const payload = message.messagePayload ? JSON.parse(atob(message.messagePayload)) : null;
    this.emit(message.messageType, { sender: message.senderClientId || null, payload, message });
  }

  on(type, handler) {
    this.handlers[type] = handler;
  }

  emit(type, event) {
    if (this.handlers[type]) this.handlers[type](event);
  }

  send(action, payload, recipient) {
    const message = {
      action,
      messagePayload: btoa(JSON.stringify(payload)),
      correlationId: String(++this.correlation),
    };
    if (recipient) message.recipientClientId = recipient;
    this.socket.send(JSON.stringify(message));
  }

  close() {
    if (this.socket) this.socket.close();
  }
}
