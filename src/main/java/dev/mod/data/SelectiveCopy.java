package dev.mod.data;

import dev.mod.ModException;
import dev.mod.model.Rng;

/**
 * A synthetic task where only a few tokens matter: BOS, then half a sequence of filler ('.') with M digits
 * at random places, then '|', then the M digits again in the order they appeared, then filler. Predicting
 * the copy needs the digits and nothing else, so a router that learned its job routes the digits: the
 * held-out batches report which positions hold them.
 */
public final class SelectiveCopy implements TrainingData {
    /** What --data takes to mean this task. */
    public static final String NAME = "copy";
    private static final int FILLER = '.';
    private static final int SEPARATOR = '|';

    private final int seqLen;
    private final int digits;
    private final int body;

    public SelectiveCopy(int seqLen, int digits) {
        this.seqLen = seqLen;
        this.digits = digits;
        this.body = seqLen / 2 - 1;
        if (digits < 1 || body < digits || body + 1 + digits > seqLen) {
            throw new ModException("data: the copy task needs sequences of at least " + (2 * digits + 2)
                    + " tokens for " + digits + " digits, got " + seqLen);
        }
    }

    @Override
    public String describe() {
        return "selective copy: " + digits + " digits in " + body + " filler tokens, copied after '|'";
    }

    @Override
    public void batch(Rng rng, int[][] input, int[][] target) {
        for (int b = 0; b < input.length; b++) {
            sample(rng, input[b], target[b], null);
        }
    }

    @Override
    public void heldOut(int i, int[][] input, int[][] target) {
        Rng rng = new Rng(0xC0FFEEL + i);
        for (int b = 0; b < input.length; b++) {
            sample(rng, input[b], target[b], null);
        }
    }

    @Override
    public boolean[][] important(int i, int batch, int seqLen) {
        Rng rng = new Rng(0xC0FFEEL + i);
        boolean[][] marks = new boolean[batch][seqLen];
        int[] in = new int[seqLen];
        int[] out = new int[seqLen];
        for (int b = 0; b < batch; b++) {
            sample(rng, in, out, marks[b]);
        }
        return marks;
    }

    @Override
    public boolean[] answers() {
        boolean[] answer = new boolean[seqLen];
        for (int j = 0; j < digits; j++) {
            answer[body + 1 + j] = true;
        }
        return answer;
    }

    // seq[T + 1] = BOS, body with digits, '|', the digits, filler; input = seq[0, T), target = seq[1, T]
    private void sample(Rng rng, int[] input, int[] target, boolean[] important) {
        int[] seq = new int[seqLen + 1];
        java.util.Arrays.fill(seq, FILLER);
        seq[0] = ByteTokenizer.BOS;
        int placed = 0;
        while (placed < digits) {
            int pos = 1 + rng.nextInt(body);
            if (seq[pos] == FILLER) {
                seq[pos] = '0' + rng.nextInt(10);
                placed++;
            }
        }
        seq[body + 1] = SEPARATOR;
        int j = 0;
        for (int pos = 1; pos <= body; pos++) {
            if (seq[pos] != FILLER) {
                seq[body + 2 + j++] = seq[pos];
                if (important != null) {
                    important[pos] = true;
                }
            }
        }
        System.arraycopy(seq, 0, input, 0, seqLen);
        System.arraycopy(seq, 1, target, 0, seqLen);
    }
}
