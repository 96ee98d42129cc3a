package dev.mod.data;

import dev.mod.ModException;
import dev.mod.model.Model;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Text as bytes: token ids 0-255 are the UTF-8 bytes, 256 is BOS (begins every prompt), 257 is EOS (ends
 * generation). A model needs a vocabulary of at least 258 ids to use it.
 */
public final class ByteTokenizer {
    public static final int BOS = 256;
    public static final int EOS = 257;
    public static final int VOCAB = 258;

    private ByteTokenizer() {
    }

    /** Refuses a model whose token ids are not bytes (a converted checkpoint's) or whose vocabulary is too small for them. */
    public static void check(Model model) {
        if (!model.tokenizer().equals(Model.BYTE_TOKENS)) {
            throw new ModException("the model's token ids are those of " + model.tokenizer() + ", which mod does not have; "
                    + "text goes in and out as bytes only with mod's own models (give token ids with forward --tokens)");
        }
        checkVocabulary(model.config().vocabSize());
    }

    /** Refuses a vocabulary too small for byte tokens. */
    public static void checkVocabulary(int vocabSize) {
        if (vocabSize < VOCAB) {
            throw new ModException("the byte tokenizer needs a vocabulary of " + VOCAB + " ids (256 bytes, BOS, EOS); "
                    + "this model has " + vocabSize);
        }
    }

    /** BOS, then the text's UTF-8 bytes. */
    public static int[] encodePrompt(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[bytes.length + 1];
        ids[0] = BOS;
        for (int i = 0; i < bytes.length; i++) {
            ids[i + 1] = bytes[i] & 0xFF;
        }
        return ids;
    }

    /** The bytes of a text as token ids, without BOS. */
    public static int[] encode(byte[] bytes) {
        int[] ids = new int[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            ids[i] = bytes[i] & 0xFF;
        }
        return ids;
    }

    // sequences[count, seqLen]: each BOS, then the next seqLen - 1 bytes of text from `from` on (prompt-shaped
    // windows, as calibration runs them)
    public static int[][] promptWindows(byte[] text, int from, int count, int seqLen) {
        int[][] sequences = new int[count][seqLen];
        for (int s = 0; s < count; s++) {
            sequences[s][0] = BOS;
            for (int i = 1; i < seqLen; i++) {
                sequences[s][i] = text[from + s * (seqLen - 1) + i - 1] & 0xFF;
            }
        }
        return sequences;
    }

    /**
     * Turns generated ids back into text as they come: a character split over several byte tokens comes out
     * once its last byte is in; bytes that are not valid UTF-8 become U+FFFD; BOS and EOS produce no text.
     */
    public static final class Decoder {
        private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPLACE)
                .onUnmappableCharacter(CodingErrorAction.REPLACE);
        private final ByteBuffer pending = ByteBuffer.allocate(8);
        private final CharBuffer chars = CharBuffer.allocate(16);

        /** The text the id completes (often "", or one character). */
        public String accept(int id) {
            if (id >= 256) {
                return "";
            }
            pending.put((byte) id);
            pending.flip();
            chars.clear();
            utf8.decode(pending, chars, false);
            pending.compact();
            chars.flip();
            return chars.toString();
        }

        /** What is left at the end: an unfinished character becomes U+FFFD. */
        public String finish() {
            pending.flip();
            chars.clear();
            utf8.decode(pending, chars, true);
            utf8.flush(chars);
            pending.clear();
            utf8.reset();
            chars.flip();
            return chars.toString();
        }
    }
}
