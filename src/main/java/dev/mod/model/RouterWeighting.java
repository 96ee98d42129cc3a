package dev.mod.model;

import dev.mod.ModException;

/** g in x'_t = x_t + g(r_t) * f_t: how a routed token's block output is weighted by its router logit. */
public enum RouterWeighting {
    /** g(r) = r, as in the paper. */
    RAW("raw"),
    /** g(r) = sigmoid(r). */
    SIGMOID("sigmoid");

    private final String jsonName;

    RouterWeighting(String jsonName) {
        this.jsonName = jsonName;
    }

    public String jsonName() {
        return jsonName;
    }

    public double apply(double r) {
        return switch (this) {
            case RAW -> r;
            case SIGMOID -> 1.0 / (1.0 + Math.exp(-r));
        };
    }

    /** g'(r), for training: the gradient reaches the router through g(r) * f. */
    public double derivative(double r) {
        return switch (this) {
            case RAW -> 1;
            case SIGMOID -> {
                double s = 1.0 / (1.0 + Math.exp(-r));
                yield s * (1 - s);
            }
        };
    }

    public static RouterWeighting fromJson(String name) {
        for (RouterWeighting w : values()) {
            if (w.jsonName.equals(name)) {
                return w;
            }
        }
        throw new ModException("config: router_weighting must be \"raw\" or \"sigmoid\", got \"" + name + "\"");
    }
}
