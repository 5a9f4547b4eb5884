// Watches the config file and the adapters' local .wasm files, and calls
// `onChange` (debounced) when one of them is written or replaced. Folders are
// watched rather than files, because editors and build tools replace files by
// rename, which a watch on the old inode would miss.

import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MixerConfig } from '../config/schema.js';
import { isRemoteUrl } from '../vm/module-source.js';

export interface FileWatcher {
  /** Re-reads which files to watch (after a reload changed the plugin list). */
  update(config: MixerConfig): void;
  close(): void;
}

export function watchFiles(configFile: string | null, config: MixerConfig, baseDir: string, debounceMs: number, onChange: (file: string) => void): FileWatcher {
  const watchers = new Map<string, FSWatcher>();
  let files = new Set<string>();
  let timer: NodeJS.Timeout | null = null;
  let changed: string | null = null;

  const fire = (file: string) => {
    changed = file;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      onChange(changed!);
    }, debounceMs);
    timer.unref();
  };

  const update = (cfg: MixerConfig) => {
    files = new Set<string>();
    if (configFile !== null) files.add(resolve(configFile));
    for (const p of cfg.plugins ?? []) {
      if (isRemoteUrl(p.url)) continue;
      files.add(p.url.startsWith('file://') ? fileURLToPath(p.url) : isAbsolute(p.url) ? p.url : resolve(baseDir, p.url));
    }
    const dirs = new Set([...files].map((f) => dirname(f)));
    for (const [d, w] of watchers) {
      if (!dirs.has(d)) {
        w.close();
        watchers.delete(d);
      }
    }
    for (const d of dirs) {
      if (watchers.has(d)) continue;
      try {
        const w = watch(d, { persistent: false }, (_event, name) => {
          if (name === null) return;
          const full = resolve(d, name.toString());
          if (files.has(full)) fire(basename(full));
        });
        w.on('error', () => {
          w.close();
          watchers.delete(d);
        });
        watchers.set(d, w);
      } catch {
        // A folder that does not exist (yet) is not watched; SIGHUP and the admin endpoint still work.
      }
    }
  };
  update(config);
  return {
    update,
    close() {
      if (timer) clearTimeout(timer);
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}
