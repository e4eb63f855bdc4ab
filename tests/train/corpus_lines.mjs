// corpus_lines.mjs: the lines of a corpus as tok_ids splits it (after each LF byte, the LF
// kept; a last line without LF is a line), as Buffers. Shared by tok_ref.mjs and gguf_tok.mjs.
export function corpusLines(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; ) {
    const nl = bytes.indexOf(0x0a, i);
    const end = nl < 0 ? bytes.length : nl + 1;
    lines.push(bytes.subarray(i, end));
    i = end;
  }
  return lines;
}
