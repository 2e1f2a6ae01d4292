/**
 * The demo's one folder, `.imago/demo-<time>/`: everything a run writes goes
 * under it (Temporal's database, Uold's and Unew's databases, logs, the plan,
 * the report), and nothing outside it is read, so a run never depends on what
 * an earlier one left. At the end, prune() keeps only the files the demo
 * named (the report, the logs), moved to the folder's top, and removes the rest.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface KeptFile { name: string; what: string; bytes: number }

export class WorkDir {
  private readonly kept = new Map<string, { from: string; what: string }>();

  private constructor(readonly dir: string, readonly id: string) {}

  /** A new folder under root, unique even for two runs started in the same millisecond. */
  static create(root: string, now = new Date()): WorkDir {
    fs.mkdirSync(root, { recursive: true });
    const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').replace(/\..*$/, '');
    for (let i = 0; ; i++) {
      const id = `demo-${stamp}${i ? `-${i}` : ''}`;
      const dir = path.join(root, id);
      try { fs.mkdirSync(dir); return new WorkDir(dir, id); } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  }

  path(...parts: string[]): string { return path.join(this.dir, ...parts); }

  /** Keeps the file at `from` (under the folder) as `name` at the folder's top when the run is pruned. */
  keep(name: string, from: string, what: string): void { this.kept.set(name, { from, what }); }

  /**
   * Copies a kept file to the top now: for a log another component deletes
   * with its folder (Unew's, destroyed with the universe).
   */
  collect(name: string): void {
    const k = this.kept.get(name);
    if (!k || k.from === this.path(name) || !fs.existsSync(k.from)) return;
    fs.copyFileSync(k.from, this.path(name));
    this.kept.set(name, { ...k, from: this.path(name) });
  }

  /** Moves the kept files to the top, removes everything else; returns what is left. */
  prune(): KeptFile[] {
    const out: KeptFile[] = [];
    for (const [name, k] of this.kept) {
      const to = this.path(name);
      if (!fs.existsSync(k.from)) continue;
      if (k.from !== to) fs.renameSync(k.from, to);
      out.push({ name, what: k.what, bytes: fs.statSync(to).size });
    }
    const keep = new Set(out.map((k) => k.name));
    for (const entry of fs.readdirSync(this.dir)) {
      if (!keep.has(entry)) fs.rmSync(this.path(entry), { recursive: true, force: true });
    }
    return out;
  }
}
