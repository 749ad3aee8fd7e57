/**
 * A JSON value read as it arrives, piece by piece, and written back the way `JSON.stringify(JSON.parse(text))`
 * writes it (no insignificant whitespace, strings and numbers in their canonical form), so that a stream can send a
 * call's arguments while the model writes them and the pieces add up to the text the whole-output parser gives.
 *
 * Each character is checked against JSON's grammar as it comes: what has been written is always a prefix of a valid
 * JSON text, and the first character that cannot continue one fails the reader. The one difference from
 * JSON.parse + JSON.stringify: an object that repeats a key keeps both (JSON.parse keeps the last value).
 */

/** Where a container wants its next token. */
const enum S {
  /** A value (the start, after `[`'s first value, after `:` and `,` in an array). */
  Value,
  /** After `{`: a key or `}`. */
  KeyOrClose,
  /** After `,` in an object: a key. */
  Key,
  /** After a key: `:`. */
  Colon,
  /** After `[`: a value or `]`. */
  ValueOrClose,
  /** After a value inside a container: `,` or the container's close. */
  After,
  Str,
  Num,
  Lit,
  Done,
  Failed,
}

const WS = new Set([' ', '\t', '\n', '\r']);
const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;
const NUMBER_CHARS = new Set([...'-+.eE0123456789']);
const LITERALS = ['true', 'false', 'null'];
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

const isHigh = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;
/** A code point (or a lone surrogate) inside a JSON string, as JSON.stringify writes it. */
const escaped = (s: string): string => JSON.stringify(s).slice(1, -1);

export class JsonValueReader {
  #state = S.Value;
  /** The open containers, innermost last: true = object. */
  #stack: boolean[] = [];
  /** Whether the string being read is an object key (after it: `:`). */
  #isKey = false;
  /** A number's or literal's characters so far; an escape's characters after the backslash. */
  #tok = '';
  #inEscape = false;
  /** A high surrogate waiting for its low half. */
  #high = '';
  #out = '';
  /** The value's first character (`{`, `[`, `"`, a digit, ...), once read. */
  first: string | undefined;

  get done(): boolean {
    return this.#state === S.Done;
  }

  get failed(): boolean {
    return this.#state === S.Failed;
  }

  /** The canonical text written since the last take. */
  take(): string {
    const s = this.#out;
    this.#out = '';
    return s;
  }

  /**
   * Reads `text` from `from` until the value ends (or fails); returns the index of the first character not read:
   * `text.length` when the value goes on, the index just past it when it ended, the failing character's otherwise.
   */
  push(text: string, from = 0): number {
    let i = from;
    for (; i < text.length; i++) {
      if (this.#state === S.Done || this.#state === S.Failed) return i;
      if (!this.#char(text[i]!)) {
        // The character ended a number or literal without belonging to it: read it again in the new state.
        i--;
      }
    }
    return i;
  }

  /** The input ended: a number at the top level ends with it. */
  end(): void {
    if (this.#state === S.Num && this.#stack.length === 0) this.#endToken();
  }

  #fail(): boolean {
    this.#state = S.Failed;
    return true;
  }

  /** Reads one character; false when it was not consumed (it ended a number) and must be read again. */
  #char(c: string): boolean {
    switch (this.#state) {
      case S.Str:
        return this.#strChar(c);
      case S.Num:
        if (NUMBER_CHARS.has(c)) {
          this.#tok += c;
          return true;
        }
        this.#endToken();
        return false;
      case S.Lit: {
        const t = this.#tok + c;
        if (!LITERALS.some((l) => l.startsWith(t))) return this.#fail();
        this.#tok = t;
        if (LITERALS.includes(t)) this.#endToken();
        return true;
      }
      default:
        break;
    }
    if (WS.has(c)) return true;
    if (this.first === undefined) this.first = c;
    switch (this.#state) {
      case S.Value:
        return this.#valueStart(c);
      case S.ValueOrClose:
        return c === ']' ? this.#close() : this.#valueStart(c);
      case S.KeyOrClose:
        if (c === '}') return this.#close();
        return this.#keyStart(c);
      case S.Key:
        return this.#keyStart(c);
      case S.Colon:
        if (c !== ':') return this.#fail();
        this.#out += ':';
        this.#state = S.Value;
        return true;
      case S.After: {
        const obj = this.#stack[this.#stack.length - 1]!;
        if (c === ',') {
          this.#out += ',';
          this.#state = obj ? S.Key : S.Value;
          return true;
        }
        if (c === (obj ? '}' : ']')) return this.#close();
        return this.#fail();
      }
      default:
        return this.#fail();
    }
  }

  #keyStart(c: string): boolean {
    if (c !== '"') return this.#fail();
    this.#isKey = true;
    this.#out += '"';
    this.#state = S.Str;
    return true;
  }

  #valueStart(c: string): boolean {
    if (c === '{' || c === '[') {
      this.#stack.push(c === '{');
      this.#out += c;
      this.#state = c === '{' ? S.KeyOrClose : S.ValueOrClose;
    } else if (c === '"') {
      this.#isKey = false;
      this.#out += '"';
      this.#state = S.Str;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      this.#tok = c;
      this.#state = S.Num;
    } else if (c === 't' || c === 'f' || c === 'n') {
      this.#tok = c;
      this.#state = S.Lit;
    } else return this.#fail();
    return true;
  }

  #close(): boolean {
    this.#out += this.#stack.pop() ? '}' : ']';
    this.#valueEnd();
    return true;
  }

  #valueEnd(): void {
    this.#state = this.#stack.length === 0 ? S.Done : S.After;
  }

  /** A number or literal is complete: its canonical text. */
  #endToken(): void {
    const t = this.#tok;
    this.#tok = '';
    if (this.#state === S.Num) {
      if (!NUMBER.test(t)) {
        this.#state = S.Failed;
        return;
      }
      this.#out += JSON.stringify(Number(t));
    } else this.#out += t;
    this.#valueEnd();
  }

  #strChar(c: string): boolean {
    if (this.#inEscape) {
      this.#tok += c;
      const t = this.#tok;
      if (t[0] === 'u') {
        if (!/^u[0-9a-fA-F]{0,4}$/.test(t)) return this.#fail();
        if (t.length < 5) return true;
        this.#inEscape = false;
        this.#unit(String.fromCharCode(parseInt(t.slice(1), 16)));
        return true;
      }
      const e = ESCAPES[t];
      if (e === undefined) return this.#fail();
      this.#inEscape = false;
      this.#unit(e);
      return true;
    }
    if (c === '\\') {
      this.#inEscape = true;
      this.#tok = '';
      return true;
    }
    if (c === '"') {
      this.#flushHigh();
      this.#out += '"';
      if (this.#isKey) this.#state = S.Colon;
      else this.#valueEnd();
      return true;
    }
    if (c.charCodeAt(0) < 0x20) return this.#fail();
    this.#unit(c);
    return true;
  }

  /** One UTF-16 unit of a string's value; a surrogate pair is written whole, a lone surrogate escaped. */
  #unit(u: string): void {
    const code = u.charCodeAt(0);
    if (this.#high !== '') {
      if (isLow(code)) {
        this.#out += this.#high + u;
        this.#high = '';
        return;
      }
      this.#flushHigh();
    }
    if (isHigh(code)) this.#high = u;
    else this.#out += escaped(u);
  }

  #flushHigh(): void {
    if (this.#high === '') return;
    this.#out += escaped(this.#high);
    this.#high = '';
  }
}
