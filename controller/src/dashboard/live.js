// The dashboard's side of the live protocol (docs/dashboard.md): one WebSocket to /ws (the session cookie
// authenticates it), subscribe to topics, snapshot then deltas with per-connection sequence numbers. A gap in
// the sequence or a dropped socket resubscribes, so every view is rebuilt from a fresh snapshot.
import { seqFollows } from './model.js';

export class Live {
  constructor({ onMessage, onStatus }) {
    this.onMessage = onMessage;
    this.onStatus = onStatus || (() => {});
    this.topics = new Set();
    this.ws = null;
    this.seq = 0;
    this.retry = 0;
    this.closed = false;
    this.received = 0;
  }

  connect() {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.reconnect();
      return;
    }
    this.ws = ws;
    this.seq = 0;
    this.onStatus('connecting');
    ws.onopen = () => {
      this.retry = 0;
      this.onStatus('live');
      if (this.topics.size) this.send({ type: 'subscribe', topics: [...this.topics] });
    };
    ws.onmessage = (ev) => {
      let m;
      try {
        m = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (!seqFollows(this.seq, m.seq)) {
        // a gap: start over from snapshots
        this.seq = 0;
        ws.close(4000, 'sequence gap');
        return;
      }
      this.seq = m.seq;
      this.received++;
      this.onMessage(m);
    };
    ws.onclose = () => {
      if (this.ws === ws) this.ws = null;
      this.onStatus('offline');
      if (!this.closed) this.reconnect();
    };
    ws.onerror = () => {};
  }

  reconnect() {
    const wait = Math.min(10_000, 500 * 2 ** this.retry++);
    setTimeout(() => {
      if (!this.closed) this.connect();
    }, wait);
  }

  send(m) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }

  /** Replaces the subscribed topics; new ones get a snapshot. */
  setTopics(topics) {
    const next = new Set(topics);
    const gone = [...this.topics].filter((t) => !next.has(t));
    const added = [...next].filter((t) => !this.topics.has(t));
    this.topics = next;
    if (gone.length) this.send({ type: 'unsubscribe', topics: gone });
    if (added.length) this.send({ type: 'subscribe', topics: added });
  }
}
