// The requests a signaling socket is waiting on (HearthClient's and HearthCalls'): owns the list
// of waiters, oldest first, each one's timeout, and settling or rejecting them. What a waiter
// waits for (its fields beyond resolve/reject/timer) is the owner's; the owner's message handler
// picks the waiter a message answers with settle().

export class Waiters {
  constructor() {
    this._list = [];
  }

  /**
   * Adds a waiter made of `fields` plus `resolve`, `reject` and `timer`, then calls `send(w)`;
   * resolves or rejects as the waiter is settled. After `timeoutMs` the waiter is dropped and
   * rejected with `timeoutError()`; if `send` throws, it is dropped and rejected with that.
   */
  add(fields, { timeoutMs, timeoutError, send }) {
    return new Promise((resolve, reject) => {
      const w = { ...fields, resolve, reject, timer: null };
      w.timer = setTimeout(() => {
        this.drop(w);
        reject(timeoutError());
      }, timeoutMs);
      this._list.push(w);
      try {
        send(w);
      } catch (e) {
        this.drop(w);
        clearTimeout(w.timer);
        reject(e);
      }
    });
  }

  /** Removes a waiter without settling it (nor clearing its timer). */
  drop(w) {
    const i = this._list.indexOf(w);
    if (i >= 0) this._list.splice(i, 1);
  }

  /** Settles the oldest waiter matching `pred`; true if there was one. */
  settle(pred, fn) {
    const w = this._list.find(pred);
    if (!w) return false;
    this.drop(w);
    clearTimeout(w.timer);
    fn(w);
    return true;
  }

  /** Rejects every waiter with `err`. */
  rejectAll(err) {
    for (const w of this._list.splice(0)) { clearTimeout(w.timer); w.reject(err); }
  }
}
