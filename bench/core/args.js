// Command-line options of the benchmark scripts, through node:util parseArgs.
import { parseArgs } from 'node:util';

/**
 * `defaults` names each --option and its default; a number default makes the value a number,
 * a boolean one a flag, undefined a string option with no default. Unknown options are errors.
 * Returns the values and the positionals.
 */
export function benchArgs(defaults, { positionals = false, args = process.argv.slice(2) } = {}) {
  const options = {};
  for (const [name, d] of Object.entries(defaults)) options[name] = { type: typeof d === 'boolean' ? 'boolean' : 'string' };
  const parsed = parseArgs({ args, options, allowPositionals: positionals, strict: true });
  const values = {};
  for (const [name, d] of Object.entries(defaults)) {
    const v = parsed.values[name];
    values[name] = v === undefined ? d : typeof d === 'number' ? Number(v) : v;
  }
  return { values, positionals: parsed.positionals };
}
