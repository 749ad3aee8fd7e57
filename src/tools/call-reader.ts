/**
 * Calls read out of a stream as the model writes them: the pieces each format's reader is made of. A reader starts
 * where `callStart` found a call and reports, as soon as it knows them, a call's name, its arguments piece by piece
 * (in the canonical JSON text the whole-output parser gives, see json-stream.ts), the call's end, and text that
 * turned out not to be a call.
 *
 * A call is announced once its name is known and its arguments have begun (or its object closed without them):
 * from then on it is a call, also if the model breaks it later (unconstrained output can); what follows the break
 * in its block is sent as text.
 */
import { JsonValueReader } from './json-stream.js';
import { isPlainObject, tryParse } from './json-scan.js';

export type CallEvent =
  | { name: string }
  | { arguments: string }
  /** The call ended: `complete` false when the output broke it or ended inside it. */
  | { callEnd: true; complete: boolean }
  | { content: string };

export interface CallReader {
  /**
   * Reads the next piece of output. `rest` is set once the calls have ended: the text after them, which the stream
   * reads as text again.
   */
  push(text: string): { events: CallEvent[]; rest?: string };
  /** The output ended inside the reader: what it still holds. */
  end(): CallEvent[];
}

/** `'yes'`: `text` starts with `lit`; `'partial'`: `text` is a proper prefix of it; `'no'` otherwise. */
export function startsWithLiteral(text: string, lit: string): 'yes' | 'partial' | 'no' {
  if (text.startsWith(lit)) return 'yes';
  return lit.startsWith(text) ? 'partial' : 'no';
}

/**
 * One call written as a JSON object `{"name": ..., <argsKey>: {...}}` (Hermes, Llama 3.1): the keys in any order,
 * other keys allowed. The arguments are the first of `argsKeys` that is given and not null (the whole-output parsers
 * prefer `argsKeys[0]` when both are given; a stream takes the one that comes first); `stringArguments`: they may be
 * JSON text in a string (some Hermes models write them so), sent whole once the string ends.
 */
export class CallObjectReader {
  #state: 'open' | 'keyOrClose' | 'key' | 'colon' | 'value' | 'after' | 'done' | 'failed' = 'open';
  #value: JsonValueReader | undefined;
  /** What the value being read is. */
  #what: 'key' | 'name' | 'args' | 'other' = 'key';
  /** The canonical text of the key or name being read, or of string arguments. */
  #text = '';
  #key = '';
  #haveArgs = false;
  #args = '';
  /** The arguments' text has been taken up to here. */
  #taken = 0;
  name: string | undefined;
  /** The arguments object has begun (its text is being read) or the object closed without one. */
  argsStarted = false;

  constructor(
    private readonly argsKeys: readonly string[],
    private readonly stringArguments: boolean,
  ) {}

  get done(): boolean {
    return this.#state === 'done';
  }

  get failed(): boolean {
    return this.#state === 'failed';
  }

  /** The arguments' canonical text read since the last take. */
  takeArguments(): string {
    const s = this.#args.slice(this.#taken);
    this.#taken = this.#args.length;
    return s;
  }

  /** Reads `text` from `from`; the index of the first character not read (see JsonValueReader.push). */
  push(text: string, from = 0): number {
    let i = from;
    while (i < text.length && this.#state !== 'done' && this.#state !== 'failed') {
      if (this.#state === 'value') {
        i = this.#readValue(text, i);
        continue;
      }
      const c = text[i]!;
      i++;
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') continue;
      if (this.#state === 'open' && c === '{') this.#state = 'keyOrClose';
      else if ((this.#state === 'key' || this.#state === 'keyOrClose') && c === '"') this.#startValue('key', c);
      else if (this.#state === 'colon' && c === ':') this.#startValue(this.#valueKind(), '');
      else if (this.#state === 'after' && c === ',') this.#state = 'key';
      else if ((this.#state === 'after' || this.#state === 'keyOrClose') && c === '}') this.#close();
      else this.#state = 'failed';
    }
    return i;
  }

  #valueKind(): 'name' | 'args' | 'other' {
    if (this.#key === 'name') return 'name';
    return !this.#haveArgs && this.argsKeys.includes(this.#key) ? 'args' : 'other';
  }

  #startValue(what: 'key' | 'name' | 'args' | 'other', first: string): void {
    this.#what = what;
    this.#text = '';
    this.#value = new JsonValueReader();
    if (first !== '') this.#text += (this.#value.push(first), this.#value.take());
    this.#state = 'value';
  }

  /** Reads the key or value being read. */
  #readValue(text: string, i: number): number {
    const v = this.#value!;
    const next = v.push(text, i);
    const piece = v.take();
    if (v.failed) {
      this.#state = 'failed';
      return next;
    }
    if (this.#what === 'args') {
      if (v.first === '{') {
        this.argsStarted = true;
        this.#haveArgs = true;
        this.#args += piece;
      } else if (v.first === '"' && this.stringArguments) this.#text += piece;
      else if (v.first !== undefined && v.first !== 'n') {
        this.#state = 'failed';
        return next;
      }
    } else this.#text += piece;
    if (v.done) this.#valueDone();
    return next;
  }

  #valueDone(): void {
    this.#value = undefined;
    const value = this.#what === 'other' ? undefined : tryParse(this.#text);
    this.#state = 'after';
    if (this.#what === 'key') {
      this.#key = value as string;
      this.#state = 'colon';
    } else if (this.#what === 'name') {
      if (typeof value === 'string' && value !== '') this.name = value;
      else this.#state = 'failed';
    } else if (this.#what === 'args' && !this.argsStarted && this.#text !== '') {
      // String arguments: JSON text of an object.
      const args = typeof value === 'string' ? tryParse(value) : undefined;
      if (!isPlainObject(args)) this.#state = 'failed';
      else {
        this.#haveArgs = true;
        this.argsStarted = true;
        this.#args = JSON.stringify(args);
      }
    }
  }

  #close(): void {
    if (this.name === undefined) {
      this.#state = 'failed';
      return;
    }
    this.#state = 'done';
    if (!this.argsStarted) {
      this.argsStarted = true;
      this.#args = '{}';
    }
  }
}

/**
 * What the format readers share: the unread text, the text read since the current call began (sent as text when it
 * turns out not to be a call), and the events of one push.
 */
export abstract class BufferedCallReader implements CallReader {
  protected buf = '';
  /** Text read since the last call was announced or ended. */
  protected raw = '';
  /** The current call has been announced (its name sent). */
  protected announced = false;
  /** Calls announced so far. */
  protected calls = 0;
  #events: CallEvent[] = [];

  push(text: string): { events: CallEvent[]; rest?: string } {
    this.buf += text;
    this.#events = [];
    const rest = this.step();
    return rest === undefined ? { events: this.#events } : { events: this.#events, rest };
  }

  end(): CallEvent[] {
    this.#events = [];
    this.finish();
    return this.#events;
  }

  /** Reads as far as the text allows; the text after the calls once they have ended. */
  protected abstract step(): string | undefined;

  /** The output ended inside the reader. */
  protected abstract finish(): void;

  protected emit(e: CallEvent): void {
    if ('content' in e && e.content === '') return;
    if ('arguments' in e && e.arguments === '') return;
    this.#events.push(e);
  }

  /** Reads the first `n` characters of the unread text. */
  protected consume(n: number): string {
    const s = this.buf.slice(0, n);
    this.buf = this.buf.slice(n);
    this.raw += s;
    return s;
  }

  /** Reads whitespace; whether text other than whitespace follows. */
  protected skipSpace(): boolean {
    const n = this.buf.length - this.buf.trimStart().length;
    this.consume(n);
    return this.buf.length > 0;
  }

  /** Reads `lit` when the text starts with it: `'yes'`; `'partial'`: wait for more; `'no'`. */
  protected literal(lit: string): 'yes' | 'partial' | 'no' {
    const m = startsWithLiteral(this.buf, lit);
    if (m === 'yes') this.consume(lit.length);
    return m;
  }

  protected announce(name: string): void {
    this.emit({ name });
    this.announced = true;
    this.calls++;
    this.raw = '';
  }

  protected endCall(complete: boolean): void {
    this.emit({ callEnd: true, complete });
    this.announced = false;
    this.raw = '';
  }

  /** Everything held (what was read of a call attempt that is no call, and the unread text) as text. */
  protected flushText(): void {
    this.emit({ content: this.raw + this.buf });
    this.raw = '';
    this.buf = '';
  }

  /**
   * Reads a call object: announces it once its name and arguments have begun, sends the arguments as they come.
   * The object's state after the read.
   */
  protected readObject(obj: CallObjectReader): 'more' | 'done' | 'failed' {
    this.consume(obj.push(this.buf));
    if (!this.announced && obj.name !== undefined && obj.argsStarted) this.announce(obj.name);
    if (this.announced) this.emit({ arguments: obj.takeArguments() });
    if (obj.failed) return 'failed';
    return obj.done ? 'done' : 'more';
  }
}
