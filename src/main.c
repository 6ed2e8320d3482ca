/* main.c - `slorad [command] [flags]`: dispatch only; every command lives in
 * the library (src/cmd_*.c) so tests link it. */
#include <slora/cli.h>

#include <stdio.h>
#include <string.h>

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    {"serve", slora_cmd_serve, "run the daemon (default command)"},
    {"generate", slora_cmd_generate, "generate text from a prompt"},
    {"gen-model", slora_cmd_gen_model, "write a deterministic random model"},
    {"convert", slora_cmd_convert, "write a .bin, GGUF or Hugging Face model as a GGUF"},
    {"quantize", slora_cmd_quantize, "write a model as a quantized GGUF (llama.cpp's types)"},
    {"logits", slora_cmd_logits, "print the base model's logits for tokens as JSON"},
    {"inspect", slora_cmd_inspect, "show (and with --model, validate) a SuperLoRA adapter"},
    {"delta", slora_cmd_delta, "write an adapter's dense deltas as safetensors"},
    {"merge", slora_cmd_merge, "write a llama2.c .bin with an adapter merged in"},
    {"import", slora_cmd_import, "convert a PEFT or llama.cpp GGUF LoRA to SuperLoRA"},
    {"hash-key", slora_cmd_hash_key, "print the sha256 of an API key read on stdin"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: slorad <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`slorad <command> --help` describes each; `slorad --version`.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return slora_cmd_serve(argc, argv);
    if (!strcmp(argv[1], "--version")) {
        printf("slorad %s\n", SLORA_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (argv[1][0] == '-')
        return slora_cmd_serve(argc, argv);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "slorad: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
