// node gen_chat_ref.mjs NPM_DIR MODEL SYSTEM|- USER: the prompt ids transformers would feed
// for `mutual generate --chat`: @lenml/tokenizer-MODEL's chat_template rendered by
// @huggingface/jinja over [{system, SYSTEM} unless "-",] {user, USER} with
// add_generation_prompt true and bos_token/eos_token from its tokenizer_config.json (as
// chat_ref.mjs renders), then encoded by @lenml/tokenizers without added special tokens
// (the template writes them). Prints the ids on one line.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [npmDir, model, system, user] = process.argv.slice(2);
const require = createRequire(path.resolve(npmDir, "package.json"));
const { Template } = require("@huggingface/jinja");
const dir = path.dirname(require.resolve(`@lenml/tokenizer-${model}/models/tokenizer.json`));
const config = JSON.parse(readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
const tok = (v) => (v && typeof v === "object" ? v.content : v ?? undefined);
const messages = [];
if (system !== "-") messages.push({ role: "system", content: system });
messages.push({ role: "user", content: user });
const text = new Template(config.chat_template).render({
  messages, add_generation_prompt: true,
  bos_token: tok(config.bos_token), eos_token: tok(config.eos_token),
});
const tokenizer = require(`@lenml/tokenizer-${model}`).fromPreTrained();
console.log(tokenizer.encode(text, { add_special_tokens: false }).join(" "));
