using Qwen35.Lora;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Qwen35.Training.Recipes;

/// <summary>
/// How the option records meet YamlDotNet: snake_case keys, enums in <see cref="OptionNames"/>' vocabulary (with
/// aliases such as <c>bfloat16</c>), and <see cref="LoraTargets"/> as either a list of names or one string (PEFT's
/// <c>all-linear</c> or a regex). The same converters read recipes and write the recipe a run used.
/// </summary>
public static class RecipeYaml
{
    public static readonly INamingConvention Naming = UnderscoredNamingConvention.Instance;

    public static IDeserializer Deserializer() => new DeserializerBuilder().WithNamingConvention(Naming)
        .WithTypeConverter(new EnumConverter()).WithTypeConverter(new LoraTargetsConverter()).Build();

    public static ISerializer Serializer() => new SerializerBuilder().WithNamingConvention(Naming)
        .WithTypeConverter(new EnumConverter()).WithTypeConverter(new LoraTargetsConverter()).Build();

    /// <summary>A single target string is a module name when it looks like one, else PEFT's string form.</summary>
    static LoraTargets TargetsFromString(string value) =>
        System.Text.RegularExpressions.Regex.IsMatch(value, "^[A-Za-z0-9_]+$") ? LoraTargets.Names(value) : LoraTargets.FromPeftString(value);

    sealed class EnumConverter : IYamlTypeConverter
    {
        public bool Accepts(Type type) => type.IsEnum;

        public object? ReadYaml(IParser parser, Type type, ObjectDeserializer rootDeserializer)
        {
            var scalar = parser.Consume<Scalar>();
            return OptionNames.TryParse(type, scalar.Value)
                   ?? throw new YamlException(scalar.Start, scalar.End, OptionNames.NotOneOf(type, scalar.Value, "value"));
        }

        public void WriteYaml(IEmitter emitter, object? value, Type type, ObjectSerializer serializer) =>
            emitter.Emit(new Scalar(OptionNames.Name((Enum)value!)));
    }

    sealed class LoraTargetsConverter : IYamlTypeConverter
    {
        public bool Accepts(Type type) => type == typeof(LoraTargets);

        public object? ReadYaml(IParser parser, Type type, ObjectDeserializer rootDeserializer)
        {
            if (parser.TryConsume<Scalar>(out var scalar)) return TargetsFromString(scalar.Value);
            parser.Consume<SequenceStart>();
            var names = new List<string>();
            while (!parser.TryConsume<SequenceEnd>(out _)) names.Add(parser.Consume<Scalar>().Value);
            return LoraTargets.Names(names);
        }

        public void WriteYaml(IEmitter emitter, object? value, Type type, ObjectSerializer serializer)
        {
            var targets = (LoraTargets)value!;
            if (targets.NameList is { } names)
            {
                emitter.Emit(new SequenceStart(null, null, false, SequenceStyle.Flow));
                foreach (var n in names) emitter.Emit(new Scalar(n));
                emitter.Emit(new SequenceEnd());
            }
            else emitter.Emit(new Scalar(targets.IsAllLinear ? LoraTargets.AllLinearShorthand : targets.Regex!));
        }
    }
}
