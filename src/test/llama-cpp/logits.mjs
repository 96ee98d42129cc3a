// llama.cpp on a GGUF file, through node-llama-cpp's prebuilt CPU build: for the ids given, the raw logits after
// each (flash attention off; the KV cache in the type given, F32 to compare exactly), and llama.cpp's own
// tokenization of a text with its detokenization back. Prints one JSON object. Used by LlamaCppParityTest:
//   node logits.mjs MODEL.gguf 256,1,2,3 F32 "some text"
import {getLlama} from "node-llama-cpp";

const [modelPath, idList, kvType, text] = process.argv.slice(2);
const ids = idList.split(",").map(Number);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
// a context larger than the ids: a full context would shift out tokens before the last one is evaluated
const context = await model.createContext({contextSize: ids.length + 16, batchSize: ids.length, flashAttention: false,
    experimentalKvCacheKeyType: kvType, experimentalKvCacheValueType: kvType});
const out = await context.getSequence().controlledEvaluate(ids.map(id => [id, {generateNext: {logits: true}}]));
const logits = out.map(o => {
    const row = [];
    for (const [id, value] of o.next.logits) {
        row[id] = value;
    }
    return row;
});
const tokens = Array.from(model.tokenize(text));
console.log(JSON.stringify({logits, tokens, detokenized: model.detokenize(tokens), bos: model.tokens.bos, eos: model.tokens.eos}));
await llama.dispose();
