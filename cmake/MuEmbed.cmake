# cmake -DIN=FILE -DOUT=FILE.c -DNAME=sym -P MuEmbed.cmake: writes FILE.c defining
# `const char NAME[]` (FILE's bytes, NUL-terminated) and `const unsigned long NAME_len`, so a
# program can carry a script (mutual plot's Python) without depending on where it is installed.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n"
       bytes "${bytes}")
file(WRITE "${OUT}.tmp"
     "/* generated from ${IN} by cmake/MuEmbed.cmake; do not edit */\n"
     "extern const char ${NAME}[];\nextern const unsigned long ${NAME}_len;\n"
     "const char ${NAME}[] = {\n${bytes}0x00};\n"
     "const unsigned long ${NAME}_len = ${len};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
