/* cli.h - `slorad <command>` entry points, one src/cmd_<name>.c each.
 * Each returns the process exit status: 0 ok, 1 runtime error, 2 usage. */
#ifndef SLORA_CLI_H
#define SLORA_CLI_H

int slora_cmd_generate(int argc, char **argv);
int slora_cmd_gen_model(int argc, char **argv);
int slora_cmd_convert(int argc, char **argv);
int slora_cmd_quantize(int argc, char **argv);
int slora_cmd_logits(int argc, char **argv);
int slora_cmd_inspect(int argc, char **argv);
int slora_cmd_delta(int argc, char **argv);
int slora_cmd_merge(int argc, char **argv);
int slora_cmd_import(int argc, char **argv);
int slora_cmd_hash_key(int argc, char **argv);
int slora_cmd_serve(int argc, char **argv);

#endif
