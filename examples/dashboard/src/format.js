// Value formats: detection, validation with a position, pretty-printing.
import YAML from 'yaml';
import { parse as parseJsonc, printParseErrorCode } from 'jsonc-parser';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The value as text, or null when it is not UTF-8 (shown as bytes). */
export function asText(bytes) {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/** "00 ff 41 …" for a binary value (first 256 bytes). */
export function hexPreview(bytes) {
  const shown = Array.from(bytes.subarray(0, 256), (b) => b.toString(16).padStart(2, '0'));
  return shown.join(' ') + (bytes.length > 256 ? ' …' : '');
}

/** A best guess from the key's name and the text: 'json', 'yaml' or 'text'. */
export function detect(key, text) {
  if (/\.json$/i.test(key)) return 'json';
  if (/\.ya?ml$/i.test(key)) return 'yaml';
  const t = text.trim();
  if ((t.startsWith('{') && t.endsWith('}')) || (t.startsWith('[') && t.endsWith(']'))) {
    if (validate('json', t).ok) return 'json';
  }
  if (/^(---\s*$|[\w"'.-]+:\s)/m.test(t) && t.includes('\n') && validate('yaml', t).ok) return 'yaml';
  return 'text';
}

/** Line and column (1-based) of character offset `pos` in `text`. */
function lineCol(text, pos) {
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  return { line, col: pos - before.lastIndexOf('\n') };
}

/** "PropertyNameExpected" -> "property name expected" */
const describe = (code) => code.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();

/** `{ ok: true }` or `{ ok: false, message, line?, col? }`. */
export function validate(format, text) {
  if (format === 'json') {
    try {
      JSON.parse(text);
      return { ok: true };
    } catch (e) {
      // The browser's message rarely says where; a JSON scanner does.
      const errors = [];
      parseJsonc(text, errors, { disallowComments: true, allowTrailingComma: false });
      if (errors.length === 0) return { ok: false, message: e.message };
      const first = errors[0];
      return { ok: false, message: describe(printParseErrorCode(first.error)), ...lineCol(text, first.offset) };
    }
  }
  if (format === 'yaml') {
    const docs = YAML.parseAllDocuments(text);
    for (const d of Array.isArray(docs) ? docs : [docs]) {
      const err = d.errors && d.errors[0];
      if (err) {
        const [line, col] = err.linePos ? [err.linePos[0].line, err.linePos[0].col] : [];
        return { ok: false, message: err.message.split('\n')[0], line, col };
      }
    }
    return { ok: true };
  }
  return { ok: true };
}

/** The text pretty-printed in its format (unchanged for text or when invalid). */
export function pretty(format, text) {
  if (!validate(format, text).ok) return text;
  if (format === 'json') return JSON.stringify(JSON.parse(text), null, 2);
  if (format === 'yaml') {
    const docs = YAML.parseAllDocuments(text);
    return (Array.isArray(docs) ? docs : [docs]).map((d) => d.toString({ indent: 2 })).join('');
  }
  return text;
}
