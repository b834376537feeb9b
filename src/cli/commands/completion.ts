import type { Command } from 'commander'
import { HousePartyError } from '../../shared/errors.ts'

/** Every command path with what may follow it: subcommands, or its options (read from the command definitions). */
export function completionTable(program: Command): Map<string, { words: string[]; takesArguments: boolean }> {
  const out = new Map<string, { words: string[]; takesArguments: boolean }>()
  const visit = (cmd: Command, path: string): void => {
    const subs = cmd.commands.map((c) => c.name())
    const flags = cmd.options.flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f)))
    out.set(path, { words: [...subs, ...flags, '--help'], takesArguments: subs.length === 0 && cmd.registeredArguments.length > 0 })
    for (const c of cmd.commands) visit(c, path ? `${path} ${c.name()}` : c.name())
  }
  visit(program, '')
  return out
}

/** A bash completion script (zsh loads it through bashcompinit). */
export function bashCompletion(program: Command): string {
  const name = program.name()
  const cases = [...completionTable(program)]
    .map(([path, c]) => `    ${JSON.stringify(path)}) words=${JSON.stringify(c.words.join(' '))}; args=${c.takesArguments ? 1 : 0} ;;`)
    .join('\n')
  const fn = `_${name.replace(/\W/g, '_')}_complete`
  return `# ${name} completion, generated from its command definitions (\`${name} completion bash\`).
${fn}() {
  local cur path="" i w words args=0
  cur="\${COMP_WORDS[COMP_CWORD]}"
  # The command path so far: the words before the cursor that are not options.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    case "\${path:+$path }$w" in
${[...completionTable(program).keys()]
  .filter((p) => p !== '')
  .map((p) => `      ${JSON.stringify(p)}) path="${p}" ;;`)
  .join('\n')}
    esac
  done
  case "$path" in
${cases}
    *) words=""; args=0 ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  # A command's arguments are local paths or party names: offer files too, unless an option is being typed.
  [[ $args == 1 && "$cur" != -* ]] && COMPREPLY+=($(compgen -f -- "$cur"))
  return 0
}
complete -o filenames -F ${fn} ${name}
`
}

export function registerCompletionCommand(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script: eval "$(houseparty completion bash)", or zsh')
    .argument('<shell>', 'bash or zsh')
    .action((shell: string) => {
      if (shell === 'bash') process.stdout.write(bashCompletion(program))
      else if (shell === 'zsh') process.stdout.write(`autoload -U +X bashcompinit && bashcompinit\n${bashCompletion(program)}`)
      else throw new HousePartyError('ERR_INVALID_ARGUMENT', `completion for ${JSON.stringify(shell)}: bash and zsh are supported`)
    })
}
