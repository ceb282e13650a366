# shellcheck shell=bash
# The files the lint checks look at, one per line, relative to the source
# tree: Meridian's own C code and shell scripts. Tracked files when the tree
# is a git checkout, otherwise a walk that skips build and dependency trees.
# The script that sources this file sets src (the source tree).
# shellcheck disable=SC2154 # src: set by the sourcing script, as said above

lint_files() {
  if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$src" ls-files
  else
    (cd "$src" && find . \( -name 'build*' -o -name node_modules -o -name .git \) -prune -o \
      -type f -print | sed 's|^\./||')
  fi
}

lint_c_files() {
  lint_files | grep -E '\.[ch]$'
}

# Shell scripts: *.sh, and files whose first line runs sh or bash. Terraform
# templates (*.tftpl) are not shell until terraform fills them in.
lint_shell_files() {
  lint_files | while IFS= read -r f; do
    case $f in
      *.tftpl | */node_modules/*) continue ;;
      *.sh) echo "$f"; continue ;;
    esac
    [ -f "$src/$f" ] || continue
    first=$(head -c 128 "$src/$f" | head -n 1 | tr -d '\0')
    case $first in
      '#!/bin/sh'* | '#!/bin/bash'* | '#!/usr/bin/env bash'* | '#!/usr/bin/env sh'*) echo "$f" ;;
    esac
  done
}
