package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.model.Presets;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** --preset NAME checked when the command line is parsed: an unknown name is a usage error (exit 2). */
final class PresetName implements ITypeConverter<String> {
    @Override
    public String convert(String name) {
        try {
            Presets.get(name);
        } catch (ModException e) {
            throw new TypeConversionException(e.getMessage());
        }
        return name;
    }
}
