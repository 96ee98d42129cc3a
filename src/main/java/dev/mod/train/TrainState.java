package dev.mod.train;

/** What a training run carries from step to step and a checkpoint keeps: the FP32 master weights and AdamW's state. */
public record TrainState(Parameters params, AdamW adam) {
}
