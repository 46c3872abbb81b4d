/**
 * The transport live view: what a TransportMonitor sees, drawn beside the terminal and refreshed a
 * few times a second. Per function (data-testid "fn-<name>", data-interface modern|legacy|none): the
 * interface the driver committed to and any access through the other one, device status with its
 * recent changes, every queue (data-testid "queue-<name>-<index>" with data-avail, data-used,
 * data-in-flight and data-interrupts, which the browser test reads), the features offered, written
 * and negotiated, the capability map drawn per BAR, and configuration space as lspci shows it.
 * Plain DOM: the skeleton is built once per function and only text and attributes change after.
 */
import './live-view.css';
import type { CapabilityMap, FunctionView, QueueView, TransportMonitor } from 'virtio-ts';

/** Refresh period: five times a second is live enough to watch and cheap to poll. */
const REFRESH_MS = 200;
/** Status changes shown per function (the monitor keeps a few more). */
const HISTORY_SHOWN = 8;

const hex = (n: number, width = 0): string => `0x${n.toString(16).padStart(width, '0')}`;
const bdfText = (bdf: number): string =>
  `${(bdf >> 8).toString(16).padStart(2, '0')}:${((bdf >> 3) & 0x1f).toString(16).padStart(2, '0')}.${bdf & 7}`;
const orDash = (n: number | undefined): string => (n === undefined ? '–' : String(n));

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className !== undefined) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Set text only when it changed (no layout work for the unchanged majority). */
function setText(e: HTMLElement, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}
function setAttr(e: HTMLElement, name: string, value: string): void {
  if (e.getAttribute(name) !== value) e.setAttribute(name, value);
}

/** One function's panel: its elements, and the last rendered values of the slow-changing parts. */
class FunctionPanel {
  readonly root: HTMLElement;
  private readonly heading = el('span', 'lv-sub');
  private readonly iface = el('p', 'lv-iface');
  private readonly status = el('p', 'lv-status');
  private readonly history = el('ol', 'lv-history');
  private readonly queues = el('tbody');
  private readonly features = el('dl', 'lv-features');
  private readonly map = el('div', 'lv-map');
  private readonly lspci = el('pre', 'lv-lspci');
  private readonly rows = new Map<number, HTMLTableRowElement>();
  private lastMap = '';

  constructor(name: string) {
    this.root = el('article', 'lv-fn');
    this.root.dataset['testid'] = `fn-${name}`;
    const h = el('h3', undefined, name);
    h.append(' ', this.heading);
    const table = el('table', 'lv-queues');
    const head = el('tr');
    for (const title of ['queue', 'size', 'ring', 'avail', 'used', 'in flight', 'interrupts', 'notifications'])
      head.append(el('th', undefined, title));
    table.append(el('thead'), this.queues);
    table.tHead!.append(head);
    const details = (summary: string, ...content: HTMLElement[]): HTMLDetailsElement => {
      const d = el('details');
      d.append(el('summary', undefined, summary), ...content);
      return d;
    };
    const capabilities = details('capability map', this.map);
    capabilities.open = true;
    this.root.append(
      h,
      this.iface,
      this.status,
      this.history,
      table,
      details('features', this.features),
      capabilities,
      details('configuration space (lspci -vv)', this.lspci),
    );
  }

  update(s: FunctionView): void {
    setAttr(this.root, 'data-interface', s.interface);
    setText(this.heading, `${bdfText(s.bdf)} ${s.typeName}, ${s.mode} function`);
    const other = s.otherInterfaceAccesses === 0 ? 'none' : `${s.otherInterfaceAccesses} (latest: ${s.lastOtherInterfaceAccess ?? '?'})`;
    setText(
      this.iface,
      `driver on the ${s.interface === 'none' ? '(no driver yet)' : `${s.interface} interface`} · accesses through the other: ${other}`,
    );
    setText(
      this.status,
      `device status ${hex(s.status, 2)} ${s.statusNames} · ${s.statusChanges} changes · ${s.configNotifications} config notifications`,
    );
    const shown = s.statusHistory.slice(-HISTORY_SHOWN);
    const lines = shown.map(
      (h) => `${(h.at / 1000).toFixed(2)} s  ${hex(h.status, 2)} ${h.names}  (${h.cause}${h.via === 'none' ? '' : `, ${h.via}`})`,
    );
    if (this.history.childElementCount !== lines.length) this.history.replaceChildren(...lines.map(() => el('li')));
    lines.forEach((line, i) => setText(this.history.children[i] as HTMLElement, line));
    for (const q of s.queues) this.updateQueue(s.name, q);
    this.updateFeatures(s);
    this.updateMap(s.capabilities);
    setText(this.lspci, s.lspci);
  }

  private updateQueue(name: string, q: QueueView): void {
    let row = this.rows.get(q.index);
    if (row === undefined) {
      row = el('tr');
      row.dataset['testid'] = `queue-${name}-${q.index}`;
      for (let i = 0; i < 8; i++) row.append(el('td'));
      this.rows.set(q.index, row);
      this.queues.append(row);
    }
    setAttr(row, 'data-avail', orDash(q.avail));
    setAttr(row, 'data-used', orDash(q.used));
    setAttr(row, 'data-in-flight', orDash(q.inFlight));
    setAttr(row, 'data-interrupts', String(q.interrupts));
    row.classList.toggle('lv-off', !q.enabled);
    // The packed ring's positions carry the wrap counter in bit 15: shown as offset/wrap.
    const position = (n: number | undefined) => (n === undefined || q.format === 'split' ? orDash(n) : `${n & 0x7fff}/w${n >> 15}`);
    const cells = [
      String(q.index),
      `${q.size}/${q.maxSize}`,
      q.format,
      position(q.avail),
      position(q.used),
      orDash(q.inFlight),
      String(q.interrupts),
      String(q.notifications),
    ];
    cells.forEach((text, i) => setText(row.cells[i]!, text));
  }

  private updateFeatures(s: FunctionView): void {
    const entries: [string, string][] = [
      ['offered', s.offeredFeatures.names],
      ['written by the driver', s.driverFeatures.names],
      ['negotiated', s.negotiatedFeatures.names],
    ];
    if (this.features.childElementCount === 0) for (const [term] of entries) this.features.append(el('dt', undefined, term), el('dd'));
    entries.forEach(([, names], i) => setText(this.features.children[2 * i + 1] as HTMLElement, names));
  }

  /** Per BAR a strip with each structure placed at its offset; then the structures in configuration space. */
  private updateMap(map: CapabilityMap): void {
    const key = JSON.stringify(map, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    if (key === this.lastMap) return;
    this.lastMap = key;
    const parts: HTMLElement[] = [];
    for (const bar of map.bars) {
      const kind = bar.kind === 'io' ? 'I/O' : `memory ${bar.is64 ? '64' : '32'}-bit${bar.prefetchable ? ' prefetchable' : ''}`;
      parts.push(
        el('div', 'lv-bar-title', `BAR${bar.index}: ${kind}, ${bar.size} bytes at ${bar.base === 0 ? '(not placed)' : hex(bar.base)}`),
      );
      const strip = el('div', 'lv-bar');
      for (const s of map.structures) {
        if (s.space !== 'bar' || s.bar !== bar.index) continue;
        const seg = el('span', `lv-seg lv-${s.name}`, s.name);
        seg.style.left = `${(100 * Math.min(s.offset, bar.size)) / bar.size}%`;
        seg.style.width = `${(100 * Math.min(s.length, Math.max(0, bar.size - s.offset))) / bar.size}%`;
        seg.title = `${s.name}: BAR${bar.index} + ${hex(s.offset)}, ${s.length} bytes${s.capOffset === undefined ? '' : ` (capability at ${hex(s.capOffset, 2)})`}`;
        strip.append(seg);
      }
      parts.push(strip);
    }
    const table = el('table', 'lv-structs');
    const head = el('tr');
    for (const title of ['structure', 'where', 'offset', 'length', 'capability']) head.append(el('th', undefined, title));
    table.append(head);
    for (const s of map.structures) {
      const row = el('tr');
      const where = s.space === 'bar' ? `BAR${s.bar}` : 'config space';
      for (const text of [s.name, where, hex(s.offset), String(s.length), s.capOffset === undefined ? '–' : hex(s.capOffset, 2)])
        row.append(el('td', undefined, text));
      table.append(row);
    }
    parts.push(table);
    if (map.error !== undefined) parts.push(el('p', 'lv-error', `capability list broken: ${map.error}`));
    this.map.replaceChildren(...parts);
  }
}

/** Render `monitor` into `root` and keep it current until dispose(). */
export function mountLiveView(root: HTMLElement, monitor: TransportMonitor): { dispose(): void } {
  const container = el('div', 'lv');
  root.replaceChildren(container);
  const panels = new Map<string, FunctionPanel>();
  const refresh = (): void => {
    const snapshot = monitor.snapshot();
    const names = snapshot.functions.map((f) => f.name);
    if (names.length !== panels.size || names.some((n) => !panels.has(n))) {
      panels.clear();
      for (const n of names) panels.set(n, new FunctionPanel(n));
      container.replaceChildren(...[...panels.values()].map((p) => p.root));
    }
    for (const f of snapshot.functions) panels.get(f.name)!.update(f);
  };
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return {
    dispose(): void {
      clearInterval(timer);
      container.remove();
    },
  };
}
