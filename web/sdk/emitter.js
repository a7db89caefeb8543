// A small event emitter: on/off/once/emit. Listener exceptions are logged, never thrown into
// the SDK's own code paths.

export class Emitter {
  constructor() {
    this._listeners = new Map();
  }

  /** Adds a listener; returns a function that removes it. */
  on(event, fn) {
    if (typeof fn !== 'function') throw new TypeError('listener must be a function');
    let set = this._listeners.get(event);
    if (!set) { set = new Set(); this._listeners.set(event, set); }
    set.add(fn);
    return () => this.off(event, fn);
  }

  /** Removes a listener (or every listener of the event when fn is omitted). */
  off(event, fn) {
    if (fn === undefined) { this._listeners.delete(event); return; }
    this._listeners.get(event)?.delete(fn);
  }

  /** Adds a listener called at most once; returns a function that removes it. */
  once(event, fn) {
    const wrapper = (...args) => { this.off(event, wrapper); fn(...args); };
    return this.on(event, wrapper);
  }

  listenerCount(event) {
    return this._listeners.get(event)?.size || 0;
  }

  emit(event, ...args) {
    const set = this._listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (e) {
        console.error(`hearth: a '${event}' listener threw`, e);
      }
    }
  }
}
