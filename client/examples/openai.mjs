// openai.mjs - slorad through the official OpenAI Node SDK (openai v4).
//
//   cd client/examples && npm install && \
//   SLORAD_URL=http://127.0.0.1:8080 SLORAD_KEY=<key> SLORAD_MODEL=acme/style node openai.mjs
//
// One completion and one streamed completion at temperature 0; prints one
// JSON line for each (the e2e test tests/e2e/openai_client.sh reads them).
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: (process.env.SLORAD_URL || "http://127.0.0.1:8080") + "/v1",
  apiKey: process.env.SLORAD_KEY || "unused-when-auth-is-off",
});
const model = process.env.SLORAD_MODEL || "stories260K";
const request = { model, prompt: "Once upon a time", max_tokens: 8, temperature: 0 };

const completion = await client.completions.create(request);
console.log(JSON.stringify({
  text: completion.choices[0].text,
  finish_reason: completion.choices[0].finish_reason,
  usage: completion.usage,
}));

const stream = await client.completions.create({ ...request, stream: true });
let text = "";
let finish = null;
for await (const chunk of stream) {
  text += chunk.choices[0]?.text ?? "";
  finish = chunk.choices[0]?.finish_reason ?? finish;
}
console.log(JSON.stringify({ streamed: text, finish_reason: finish }));
