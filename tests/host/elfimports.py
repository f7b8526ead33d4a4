"""Which symbols a shared object imports, and where their GOT slots are (ELF64 LE only).

imports(path) -> [(symbol, r_offset, defined_here)] for the dynamic relocations that bind a
slot to a symbol (R_X86_64_64, GLOB_DAT, JUMP_SLOT). After dlopen(RTLD_NOW) the slot at
load_bias + r_offset holds the address the dynamic linker chose: Host.bindings() reads
it and asks dladdr which object it lies in.
"""
import struct

SHT_RELA, SHT_DYNSYM = 4, 11
R_X86_64_64, R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT = 1, 6, 7


def imports(path):
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError(f"{path}: not a little-endian ELF64 object")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = []
    for i in range(shnum):
        (name, typ, flags, addr, off, size, link, info, align,
         entsize) = struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
        sections.append((typ, off, size, link, entsize))
    out = []
    for typ, off, size, link, entsize in sections:
        if typ != SHT_RELA:
            continue
        symtab = sections[link]
        if symtab[0] != SHT_DYNSYM:
            continue
        strtab = sections[symtab[3]]
        for r in range(size // entsize):
            r_offset, r_info, _addend = struct.unpack_from("<QQq", data, off + r * entsize)
            rtype, symi = r_info & 0xFFFFFFFF, r_info >> 32
            if rtype not in (R_X86_64_64, R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT) or not symi:
                continue
            st_name, _info, _other, shndx, _value, _size = struct.unpack_from(
                "<IBBHQQ", data, symtab[1] + symi * 24)
            end = data.index(b"\0", strtab[1] + st_name)
            out.append((data[strtab[1] + st_name:end].decode(), r_offset, shndx != 0))
    return out
