// Small readers and one writer for 64-bit little-endian ELF shared libraries, with no binutils or patchelf needed:
// - copyWithSoname / readSoname: the DT_SONAME of a library;
// - versionedImports: the undefined dynamic symbols with the version each one requires (what `objdump -T` shows).
//
// Why the soname rewrite: the dynamic linker hands a loaded library to every later request for its soname. tokmeter's bundled ONNX
// Runtime therefore gets a private soname, so that another package's runtime (onnxruntime-node of another version,
// loaded in the same process) never binds to ours, and ours, loaded by path, is never replaced by theirs.
//
// The new name must not be longer than the old one: it is written over the old string in .dynstr. The rewrite
// refuses when any other dynamic-section string or dynamic symbol name points into the old string (a shared tail),
// and it updates the hash of the version-definition base entry, which carries the soname.
import fs from 'node:fs';

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const DT = { NULL: 0, NEEDED: 1, STRTAB: 5, STRSZ: 10, SONAME: 14, RPATH: 15, RUNPATH: 29, VERDEF: 0x6ffffffc };
const SHT_DYNSYM = 11;

function elfHash(name) {
  let h = 0;
  for (const c of Buffer.from(name)) {
    h = ((h << 4) + c) >>> 0;
    const g = h & 0xf0000000;
    if (g) h ^= g >>> 24;
    h &= ~g >>> 0;
  }
  return h >>> 0;
}

function readString(buf, off) {
  const end = buf.indexOf(0, off);
  if (end < 0) throw new Error('unterminated string in .dynstr');
  return buf.toString('latin1', off, end);
}

/** Parses what the rewrite needs; throws on anything but a 64-bit little-endian ELF with a dynamic section. */
function parse(buf) {
  if (buf.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error('only 64-bit little-endian ELF files are supported');
  const phoff = Number(buf.readBigUInt64LE(0x20));
  const phentsize = buf.readUInt16LE(0x36);
  const phnum = buf.readUInt16LE(0x38);
  const loads = [];
  let dyn = null;
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const type = buf.readUInt32LE(p);
    const seg = {
      offset: Number(buf.readBigUInt64LE(p + 8)),
      vaddr: Number(buf.readBigUInt64LE(p + 16)),
      filesz: Number(buf.readBigUInt64LE(p + 32)),
    };
    if (type === PT_LOAD) loads.push(seg);
    if (type === PT_DYNAMIC) dyn = seg;
  }
  if (!dyn) throw new Error('no dynamic section (not a shared library)');
  const toOffset = (vaddr) => {
    const seg = loads.find((s) => vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz);
    if (!seg) throw new Error(`address 0x${vaddr.toString(16)} is in no loaded segment`);
    return vaddr - seg.vaddr + seg.offset;
  };
  const entries = [];
  for (let p = dyn.offset; p + 16 <= dyn.offset + dyn.filesz; p += 16) {
    const tag = Number(buf.readBigInt64LE(p));
    if (tag === DT.NULL) break;
    entries.push({ tag, val: Number(buf.readBigUInt64LE(p + 8)) });
  }
  const get = (tag) => entries.find((e) => e.tag === tag)?.val;
  if (get(DT.STRTAB) === undefined) throw new Error('no DT_STRTAB');
  const strtab = toOffset(get(DT.STRTAB));
  return { entries, get, strtab, toOffset };
}

/** String-table offsets referenced by the dynamic section, the version definitions and the dynamic symbols. */
function stringRefs(buf, elf) {
  const refs = [];
  for (const e of elf.entries) {
    if ([DT.NEEDED, DT.RPATH, DT.RUNPATH].includes(e.tag)) refs.push({ what: `dynamic tag ${e.tag}`, off: e.val });
  }
  for (const s of sections(buf).filter((x) => x.type === SHT_DYNSYM)) {
    for (let p = s.offset; p + 24 <= s.offset + s.size; p += 24) {
      refs.push({ what: 'a dynamic symbol', off: buf.readUInt32LE(p) });
    }
  }
  return refs;
}

/** Copies `src` to `dest` with the soname `newName`; returns the old soname. */
export function copyWithSoname(src, dest, newName) {
  const buf = fs.readFileSync(src);
  const elf = parse(buf);
  const sonameOff = elf.get(DT.SONAME);
  if (sonameOff === undefined) throw new Error(`${src} has no soname`);
  const at = elf.strtab + sonameOff;
  const old = readString(buf, at);
  if (Buffer.byteLength(newName) > old.length) {
    throw new Error(`the new soname ${newName} is longer than the old one (${old})`);
  }
  for (const r of stringRefs(buf, elf)) {
    if (r.off > sonameOff && r.off <= sonameOff + old.length) {
      throw new Error(`${r.what} shares the soname's string (${readString(buf, elf.strtab + r.off)}); cannot rewrite`);
    }
  }
  buf.fill(0, at, at + old.length);
  buf.write(newName, at, 'latin1');
  // The version definitions' base entry names the file by its soname: keep its hash consistent.
  const verdef = elf.get(DT.VERDEF);
  if (verdef !== undefined) {
    let p = elf.toOffset(verdef);
    for (;;) {
      const flags = buf.readUInt16LE(p + 2);
      const aux = p + buf.readUInt32LE(p + 12);
      if (flags & 1 /* VER_FLG_BASE */ && buf.readUInt32LE(aux) === sonameOff)
        buf.writeUInt32LE(elfHash(newName), p + 8);
      const next = buf.readUInt32LE(p + 16);
      if (next === 0) break;
      p += next;
    }
  }
  const tmp = `${dest}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, buf, { mode: 0o755 });
  fs.renameSync(tmp, dest);
  return old;
}

/** The DT_SONAME of an ELF shared library, or null when it has none. */
export function readSoname(file) {
  const buf = fs.readFileSync(file);
  const elf = parse(buf);
  const off = elf.get(DT.SONAME);
  return off === undefined ? null : readString(buf, elf.strtab + off);
}

const SHT_GNU_VERSYM = 0x6fffffff;
const SHT_GNU_VERNEED = 0x6ffffffe;

function sections(buf) {
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const out = [];
  for (let i = 0; i < shnum; i++) {
    const s = shoff + i * shentsize;
    out.push({
      type: buf.readUInt32LE(s + 4),
      offset: Number(buf.readBigUInt64LE(s + 24)),
      size: Number(buf.readBigUInt64LE(s + 32)),
      link: buf.readUInt32LE(s + 40),
    });
  }
  return out;
}

/**
 * The undefined dynamic symbols of an ELF file: `{ name, version, library, weak }`, where `version` is the symbol
 * version it requires (e.g. "GLIBC_2.34") and `library` the file that version is required from, or null for an
 * unversioned reference.
 */
export function versionedImports(file) {
  const buf = fs.readFileSync(file);
  parse(buf);
  const secs = sections(buf);
  const dynsym = secs.find((s) => s.type === SHT_DYNSYM);
  if (!dynsym) return [];
  const dynstr = secs[dynsym.link];
  const str = (off) => readString(buf, dynstr.offset + off);
  const versym = secs.find((s) => s.type === SHT_GNU_VERSYM);
  const verneed = secs.find((s) => s.type === SHT_GNU_VERNEED);
  // Version index -> { version, library } from the version-needed entries.
  const needed = new Map();
  if (verneed) {
    let p = verneed.offset;
    for (;;) {
      const cnt = buf.readUInt16LE(p + 2);
      const library = str(buf.readUInt32LE(p + 4));
      let a = p + buf.readUInt32LE(p + 8);
      for (let i = 0; i < cnt; i++) {
        needed.set(buf.readUInt16LE(a + 6), { version: str(buf.readUInt32LE(a + 8)), library });
        const next = buf.readUInt32LE(a + 12);
        if (next === 0) break;
        a += next;
      }
      const next = buf.readUInt32LE(p + 12);
      if (next === 0) break;
      p += next;
    }
  }
  const out = [];
  for (let i = 1; i * 24 < dynsym.size; i++) {
    const p = dynsym.offset + i * 24;
    const shndx = buf.readUInt16LE(p + 6);
    if (shndx !== 0) continue; // defined here
    const name = str(buf.readUInt32LE(p));
    if (!name) continue;
    const bind = buf[p + 4] >> 4;
    const idx = versym ? buf.readUInt16LE(versym.offset + i * 2) & 0x7fff : 0;
    const v = needed.get(idx);
    out.push({ name, version: v?.version ?? null, library: v?.library ?? null, weak: bind === 2 });
  }
  return out;
}
