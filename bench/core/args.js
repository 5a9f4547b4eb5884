// Command-line options of the benchmark scripts, through node:util parseArgs.
import { readFileSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { parseArgs } from 'node:util';

/**
 * `defaults` names each --option and its default; a number default makes the value a number,
 * a boolean one a flag, undefined a string option with no default. Unknown options are errors.
 * Returns the values and the positionals.
 */
export function benchArgs(defaults, { positionals = false, args = process.argv.slice(2) } = {}) {
  // Scripts that declare no `help` option of their own answer --help from their header comment.
  if (!('help' in defaults) && args.includes('--help')) {
    process.stdout.write(usage(defaults, positionals));
    process.exit(0);
  }
  const options = {};
  for (const [name, d] of Object.entries(defaults)) options[name] = { type: typeof d === 'boolean' ? 'boolean' : 'string' };
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: positionals, strict: true });
  } catch (err) {
    // A typo must not start a long run, nor end in a stack trace.
    process.stderr.write(`${relative(process.cwd(), process.argv[1])}: ${err.message} (--help lists the options)\n`);
    process.exit(64);
  }
  const values = {};
  for (const [name, d] of Object.entries(defaults)) {
    const v = parsed.values[name];
    values[name] = v === undefined ? d : typeof d === 'number' ? Number(v) : v;
  }
  return { values, positionals: parsed.positionals };
}

/** The running script's leading comment block, then its options with their defaults. */
export function usage(defaults, positionals = false, script = process.argv[1]) {
  const header = [];
  for (const line of readFileSync(script, 'utf8').split('\n')) {
    if (!line.startsWith('//')) break;
    header.push(line.replace(/^\/\/ ?/, ''));
  }
  const shown = (d) => (d === undefined || d === null || d === '' ? 'VALUE' : typeof d === 'string' && isAbsolute(d) ? relative(process.cwd(), d) : d);
  const opts = Object.entries(defaults).map(([name, d]) => (typeof d === 'boolean' ? `[--${name}]` : `[--${name} ${shown(d)}]`));
  return `${header.join('\n')}\n\nnode ${relative(process.cwd(), script)} ${opts.join(' ')}${positionals ? ' [ARGS...]' : ''}\n`;
}
