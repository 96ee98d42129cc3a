package dev.mod.data;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class ByteTokenizerTest {
    @Test
    void promptsAreBosThenUtf8Bytes() {
        assertArrayEquals(new int[] {ByteTokenizer.BOS, 'a', 0xC3, 0xA9}, ByteTokenizer.encodePrompt("aé"));
    }

    @Test
    void decoderReleasesACharacterOnceAllItsBytesAreIn() {
        ByteTokenizer.Decoder d = new ByteTokenizer.Decoder();
        assertEquals("a", d.accept('a'));
        assertEquals("", d.accept(0xE2));
        assertEquals("", d.accept(0x82));
        assertEquals("€", d.accept(0xAC));
        assertEquals("", d.accept(ByteTokenizer.EOS));
        assertEquals("", d.finish());
    }

    @Test
    void invalidAndUnfinishedBytesBecomeReplacementCharacters() {
        ByteTokenizer.Decoder d = new ByteTokenizer.Decoder();
        assertEquals("\uFFFD", d.accept(0xFF));
        assertEquals("", d.accept(0xC3));
        assertEquals("\uFFFD", d.finish());
        assertEquals("x", d.accept('x'));
    }
}
