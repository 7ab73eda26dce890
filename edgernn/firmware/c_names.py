"""Names a generated C array may not take: the C and C++ standard libraries' functions, macros and types.

The header is included beside ``<math.h>``, ``<stdint.h>``, ``<string.h>`` and TensorFlow Lite Micro's C++
headers, and the array is a global: named ``log``, ``sqrt`` or ``INT8_MAX`` it redefines a standard name and
the firmware fails to compile (or, worse, a macro rewrites it). The lists cover C17's standard headers and the
C++ names a firmware build commonly sees unqualified.
"""

from __future__ import annotations

_C_FUNCTIONS = """
abort abs acos acosf acosh acoshf acoshl acosl aligned_alloc asctime asin asinf asinh asinhf asinhl asinl assert
at_quick_exit atan atan2 atan2f atan2l atanf atanh atanhf atanhl atanl atexit atof atoi atol atoll bsearch btowc
c16rtomb c32rtomb cabs cacos calloc carg casin catan cbrt cbrtf cbrtl ccos ccosh ceil ceilf ceill cexp cimag clearerr
clock clog conj copysign copysignf copysignl cos cosf cosh coshf coshl cosl cpow cproj creal csin csinh csqrt ctan
ctanh ctime difftime div erf erfc erfcf erfcl erff erfl exit _Exit exp exp2 exp2f exp2l expf expl expm1 expm1f expm1l
fabs fabsf fabsl fclose fdim fdimf fdiml feclearexcept fegetenv fegetexceptflag fegetround feholdexcept feof
feraiseexcept ferror fesetenv fesetexceptflag fesetround fetestexcept feupdateenv fflush fgetc fgetpos fgets fgetwc
fgetws floor floorf floorl fma fmaf fmal fmax fmaxf fmaxl fmin fminf fminl fmod fmodf fmodl fopen fpclassify fprintf
fputc fputs fputwc fputws fread free freopen frexp frexpf frexpl fscanf fseek fsetpos ftell fwide fwprintf fwrite
fwscanf getc getchar getenv gets getwc getwchar gmtime hypot hypotf hypotl ilogb ilogbf ilogbl imaxabs imaxdiv
isalnum isalpha isblank iscntrl isdigit isfinite isgraph isgreater isgreaterequal isinf isless islessequal
islessgreater islower isnan isnormal isprint ispunct isspace isunordered isupper iswalnum iswalpha iswblank iswcntrl
iswctype iswdigit iswgraph iswlower iswprint iswpunct iswspace iswupper iswxdigit isxdigit labs ldexp ldexpf ldexpl
ldiv lgamma lgammaf lgammal llabs lldiv llrint llrintf llrintl llround llroundf llroundl localeconv localtime log
log10 log10f log10l log1p log1pf log1pl log2 log2f log2l logb logbf logbl logf logl longjmp lrint lrintf lrintl
lround lroundf lroundl main malloc mblen mbrlen mbrtoc16 mbrtoc32 mbrtowc mbsinit mbsrtowcs mbstowcs mbtowc memchr
memcmp memcpy memmove memset mktime modf modff modfl nan nanf nanl nearbyint nearbyintf nearbyintl nextafter
nextafterf nextafterl nexttoward nexttowardf nexttowardl perror pow powf powl printf putc putchar puts putwc putwchar
qsort quick_exit raise rand realloc remainder remainderf remainderl remove remquo remquof remquol rename rewind rint
rintf rintl round roundf roundl scalbln scalblnf scalblnl scalbn scalbnf scalbnl scanf setbuf setjmp setlocale
setvbuf signal signbit sin sinf sinh sinhf sinhl sinl snprintf sprintf sqrt sqrtf sqrtl srand sscanf strcat strchr
strcmp strcoll strcpy strcspn strerror strftime strlen strncat strncmp strncpy strpbrk strrchr strspn strstr strtod
strtof strtoimax strtok strtol strtold strtoll strtoul strtoull strtoumax strxfrm swprintf swscanf system tan tanf
tanh tanhf tanhl tanl tgamma tgammaf tgammal thrd_create thrd_exit thrd_join time timespec_get tmpfile tmpnam tolower
toupper towctrans towlower towupper trunc truncf truncl ungetc ungetwc va_arg va_copy va_end va_start vfprintf
vfscanf vfwprintf vfwscanf vprintf vscanf vsnprintf vsprintf vsscanf vswprintf vswscanf vwprintf vwscanf wcrtomb
wcscat wcschr wcscmp wcscoll wcscpy wcscspn wcsftime wcslen wcsncat wcsncmp wcsncpy wcspbrk wcsrchr wcsrtombs wcsspn
wcsstr wcstod wcstof wcstoimax wcstok wcstol wcstold wcstoll wcstombs wcstoul wcstoull wcstoumax wcsxfrm wctob wctomb
wctrans wctype wmemchr wmemcmp wmemcpy wmemmove wmemset wprintf wscanf
"""
_C_TYPES_AND_MACROS = """
BUFSIZ CHAR_BIT CHAR_MAX CHAR_MIN CLOCKS_PER_SEC DBL_DIG DBL_EPSILON DBL_MANT_DIG DBL_MAX DBL_MIN EDOM EILSEQ EOF
ERANGE EXIT_FAILURE EXIT_SUCCESS FILE FILENAME_MAX FLT_DIG FLT_EPSILON FLT_MANT_DIG FLT_MAX FLT_MIN FLT_RADIX
FOPEN_MAX HUGE_VAL HUGE_VALF HUGE_VALL INFINITY INT16_MAX INT16_MIN INT32_MAX INT32_MIN INT64_MAX INT64_MIN INT8_MAX
INT8_MIN INTMAX_MAX INTMAX_MIN INTPTR_MAX INTPTR_MIN INT_MAX INT_MIN LC_ALL LC_COLLATE LC_CTYPE LC_MONETARY
LC_NUMERIC LC_TIME LDBL_DIG LDBL_EPSILON LDBL_MAX LDBL_MIN LLONG_MAX LLONG_MIN LONG_MAX LONG_MIN MATH_ERREXCEPT
MATH_ERRNO MB_CUR_MAX MB_LEN_MAX M_E M_PI NAN NDEBUG NULL PTRDIFF_MAX PTRDIFF_MIN RAND_MAX SCHAR_MAX SCHAR_MIN
SEEK_CUR SEEK_END SEEK_SET SHRT_MAX SHRT_MIN SIGABRT SIGFPE SIGILL SIGINT SIGSEGV SIGTERM SIG_ATOMIC_MAX
SIG_ATOMIC_MIN SIG_DFL SIG_ERR SIG_IGN SIZE_MAX TIME_UTC TMP_MAX UCHAR_MAX UINT16_MAX UINT32_MAX UINT64_MAX UINT8_MAX
UINTMAX_MAX UINTPTR_MAX UINT_MAX ULLONG_MAX ULONG_MAX USHRT_MAX WCHAR_MAX WCHAR_MIN WEOF WINT_MAX WINT_MIN
bool char16_t char32_t clock_t div_t double_t errno fenv_t fexcept_t float_t fpos_t imaxdiv_t int16_t int32_t
int64_t int8_t int_fast16_t int_fast32_t int_fast64_t int_fast8_t int_least16_t int_least32_t int_least64_t
int_least8_t intmax_t intptr_t jmp_buf lconv ldiv_t lldiv_t max_align_t mbstate_t memory_order noreturn offsetof
ptrdiff_t sig_atomic_t size_t static_assert stderr stdin stdout thrd_t time_t timespec tm uint16_t uint32_t uint64_t
uint8_t uint_fast16_t uint_fast32_t uint_fast64_t uint_fast8_t uint_least16_t uint_least32_t uint_least64_t
uint_least8_t uintmax_t uintptr_t va_list wchar_t wctrans_t wctype_t wint_t alignas alignof complex imaginary I
"""
_CPP_NAMES = """
std tflite TfLiteTensor TfLiteStatus TfLiteType kTfLiteOk kTfLiteError kTfLiteInt8 kTfLiteInt16 kTfLiteFloat32
MicroInterpreter MicroMutableOpResolver GetModel array vector string map set pair tuple optional variant function
move forward swap min max begin end size data cout cin cerr endl
"""

STANDARD_NAMES = frozenset((_C_FUNCTIONS + _C_TYPES_AND_MACROS + _CPP_NAMES).split())
