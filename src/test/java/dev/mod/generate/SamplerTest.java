package dev.mod.generate;

import dev.mod.ModException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class SamplerTest {
    /** Probabilities 1/6, 2/6, 3/6 at temperature 1. */
    private static final float[] LOGITS = {0f, (float) Math.log(2), (float) Math.log(3)};

    @Test
    void temperatureZeroTakesTheMostLikelyToken() {
        assertEquals(2, new Sampler(0, 1, 1).sample(new float[] {9, 1, 3, 10, 2}, 1, 3));
    }

    @Test
    void drawsFollowTheSoftmax() {
        Sampler s = new Sampler(1, 1, 42);
        int[] counts = new int[3];
        int draws = 60_000;
        for (int i = 0; i < draws; i++) {
            counts[s.sample(LOGITS, 0, 3)]++;
        }
        for (int i = 0; i < 3; i++) {
            assertEquals((i + 1) / 6.0, counts[i] / (double) draws, 0.01, "token " + i);
        }
    }

    @Test
    void topPKeepsTheSmallestSetThatReachesIt() {
        Sampler half = new Sampler(1, 0.5, 3);
        Sampler most = new Sampler(1, 0.8, 3);
        boolean sawMiddle = false;
        for (int i = 0; i < 2000; i++) {
            assertEquals(2, half.sample(LOGITS, 0, 3));
            int t = most.sample(LOGITS, 0, 3);
            assertEquals(true, t >= 1, "token 0 lies outside the 0.8 nucleus");
            sawMiddle |= t == 1;
        }
        assertEquals(true, sawMiddle);
    }

    /**
     * On a vocabulary with many tied logits the draws are those of the rule written plainly (a sort of all ids by
     * probability, ties by lower id, then the smallest prefix reaching top-p, then a draw from it): same seed, same
     * tokens, draw after draw.
     */
    @Test
    void drawsMatchThePlainRuleWithTies() {
        java.util.SplittableRandom values = new java.util.SplittableRandom(5);
        int vocab = 300;
        for (double topP : new double[] {0.3, 0.9, 1.0}) {
            Sampler sampler = new Sampler(0.7, topP, 11);
            java.util.SplittableRandom random = new java.util.SplittableRandom(11);
            for (int draw = 0; draw < 200; draw++) {
                float[] logits = new float[vocab + 4];
                for (int i = 0; i < vocab; i++) {
                    logits[4 + i] = values.nextInt(5) * 0.5f;
                }
                double max = 2;
                double[] probs = new double[vocab];
                double total = 0;
                Integer[] order = new Integer[vocab];
                for (int i = 0; i < vocab; i++) {
                    probs[i] = Math.exp((logits[4 + i] - max) / 0.7);
                    total += probs[i];
                    order[i] = i;
                }
                java.util.Arrays.sort(order, (x, y) -> probs[x] != probs[y] ? Double.compare(probs[y], probs[x]) : Integer.compare(x, y));
                int kept = 0;
                double mass = 0;
                while (kept < vocab && (kept == 0 || mass < topP * total)) {
                    mass += probs[order[kept++]];
                }
                double u = random.nextDouble() * mass;
                int expected = order[kept - 1];
                for (int i = 0; i < kept; i++) {
                    u -= probs[order[i]];
                    if (u < 0) {
                        expected = order[i];
                        break;
                    }
                }
                assertEquals(expected, sampler.sample(logits, 4, vocab), "top-p " + topP + ", draw " + draw);
            }
        }
    }

    @Test
    void sameSeedSameDraws() {
        Sampler a = new Sampler(0.7, 0.9, 5);
        Sampler b = new Sampler(0.7, 0.9, 5);
        for (int i = 0; i < 100; i++) {
            assertEquals(a.sample(LOGITS, 0, 3), b.sample(LOGITS, 0, 3));
        }
    }

    @Test
    void badSettingsAreRefused() {
        assertThrows(ModException.class, () -> new Sampler(-1, 1, 0));
        assertThrows(ModException.class, () -> new Sampler(Double.NaN, 1, 0));
        assertThrows(ModException.class, () -> new Sampler(1, 0, 0));
        assertThrows(ModException.class, () -> new Sampler(1, 1.5, 0));
    }
}
