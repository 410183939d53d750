/*
 * nmi.pml -- Promela model of the x86_64 IDT NMI nesting protocol and the
 * NMI dispatcher of the series (see ../Documentation/arch/x86/nmi-nesting.rst (patches/)).
 *
 * One CPU.  Two processes:
 *   env  -- the NMI sources: internal (PMU-like, one NMI edge per event,
 *           pending-event counter) and external (status-bearing, one status
 *           bit, an NMI edge when the bit goes 0->1).  At most MAXEV events.
 *   cpu  -- the CPU: NMI mask + one-deep latch, a program counter over the
 *           instruction boundaries of interest, the slots of the NMI stack and
 *           the C-level state of exc_nmi()/the dispatcher.  A pending NMI is
 *           taken at the next instruction boundary where NMIs are unmasked
 *           (delivery has priority over executing the next instruction).
 *
 * Every "instruction" step below names the asm label / instruction / C
 * statement it stands for.  Frames are abstract: a frame value is the
 * (pc, stack) it returns to, ENC(pc, stk); stk=1 means "C code running on the
 * thread stack" (user path), stk=0 the NMI IST stack (or a kernel stack for
 * the plain contexts).
 *
 * Mutants (known-bad variants, each must produce a counter-example):
 *   MUTANT_RSP_ONLY            nesting = "interrupted RSP in NMI stack" alone
 *   MUTANT_RSP_RANGE           pre-CVE-2015-3291 upstream: flag || RSP range
 *   MUTANT_NO_REPEAT           nested NMI changes nothing (no repeat path)
 *   MUTANT_CLEAR_AFTER_IRET    "NMI executing" cleared after the final IRETQ
 *   MUTANT_NO_RIP_CHECK        no RIP==nmi_final_iret test
 *   MUTANT_NO_REGION_CHECK     no RIP in [nmi_repeat, nmi_repeat_end) test
 *   MUTANT_COPY_OUTSIDE_REGION SF->WF copy placed after nmi_repeat_end
 *   MUTANT_REPEAT_NO_COPY      repeat path does not rebuild the working frame
 *   MUTANT_USER_ON_IST         user-mode NMIs use the IST nesting path
 *   MUTANT_EXT_ONLY_UNCLAIMED  externals only if no internal claimed (6.12)
 *   MUTANT_NO_POLL             rules (1),(2) but no deferred poll
 *   MUTANT_NO_SWALLOW          no swallow accounting
 *   MUTANT_FAST_RETURN_TF      error_return's fast return without the TF test
 *   MUTANT_FAST_RETURN_RF      error_return's fast return without the RF/DR7 test
 *   MUTANT_FAST_RETURN_DB      #DB (paranoid_exit) returns by popfq; ret too
 *   MUTANT_FAST_RETURN_SYNC_CORE  the fast return serializes by sync_core()
 *                              (IRET-to-self)
 * Protocol-as-written variants (the notes are silent or wrong; see README):
 *   LITERAL_POLL               the poll self-NMI is not claimed by anybody
 *   LITERAL_SWALLOW            swallow budget counts internal handlers only
 * Known limits / assumption checks (informational):
 *   MC_IN_WINDOW               #MC at a boundary where "NMI executing" is 0
 *   EXT_EDGE_EVERY             external source raises an NMI edge per event even
 *                              while its status bit is still set (assumption check)
 * Other switches:
 *   MAXEV=n   number of source events (default 3)
 *   NOBOUND   drop the "handler runs <= NMI deliveries" bound (for -DNP runs)
 */

#ifndef MAXEV
#define MAXEV 3
#endif

/* ---------------- program counters (instruction boundaries) ------------- */
/* interrupted contexts (no NMI in progress at this level)                   */
#define C_USER      1   /* user mode: CS RPL 3                                 */
#define C_KERN      2   /* kernel, RSP on a kernel stack                       */
#define C_GAP       3   /* entry_SYSCALL_64 before the RSP switch / after the
                           user RSP reload before SYSRETQ: CS kernel, RSP is
                           user controlled and points INTO the NMI stack       */
/* IST path of asm_exc_nmi                                                  */
#define I_FIRST     4   /* first_nmi: movq (%rsp),%rdx; 5x pushq HW->SF; jmp .Lnmi_setup */
#define I_REPEAT    5   /* nmi_repeat: incq repeat-counter slot (T-72)         */
#define I_SETUP     6   /* .Lnmi_setup: movq $1, "NMI executing" (T-56)        */
#define I_COPY1     7   /* copy SF->WF, first pushes (SS, RSP, RFLAGS)         */
#define I_COPY2     8   /* copy SF->WF, last pushes (CS, RIP)                  */
#define I_END       9   /* nmi_repeat_end: [DEBUG_ENTRY knob -> IRET-to-self]
                           pushq orig_ax; call paranoid_entry; call exc_nmi    */
/* C: exc_nmi() / default_do_nmi() (shared by IST path and user path)         */
#define E_ENTRY    10   /* exc_nmi: xchg nested/repeat slots (IST only);
                           if (nmi_state != NOT_RUNNING) {LATCHED; return}     */
#define E_RESTART  11   /* nmi_restart: b2b test; INTERNAL handlers                  */
#define E_F1       12   /* inside an internal handler: may take #PF/#BP/#DB    */
#define E_EXT      13   /* EXTERNAL handlers (port 0x61, NMI_UNKNOWN, ...)     */
#define E_F2       14   /* inside an external handler: may take #PF/#BP/#DB    */
#define E_TAIL     15   /* swallow / unknown accounting; poll owed            */
#define E_DEC      16   /* if (this_cpu_dec_return(nmi_state)) goto nmi_restart */
#define X_PF       17   /* in a #PF/#BP handler, on the current stack; returns
                           through error_return: popfq; ret (NMI mask kept) or
                           iretq (TF, RF + breakpoint, debugfs knob)          */
#define X_DB       18   /* in a #DB/#MC handler, on its own IST stack;
                           paranoid_exit: always iretq                         */
/* IST exit                                                                 */
#define X_EXIT     19   /* paranoid_exit: IBRS_EXIT, restore CR3, GS; POP_REGS;
                           addq skip orig_ax + saved frame                    */
#define X_CLR      20   /* movq $0, "NMI executing"                            */
#define X_FINAL    21   /* nmi_final_iret: iretq (consumes the working frame) */
/* user path                                                                */
#define U_ENTRY    22   /* swapgs; SWITCH_TO_KERNEL_CR3; move HW frame to the
                           thread stack; PUSH_AND_CLEAR_REGS; call exc_nmi    */
#define U_EXIT     23   /* swapgs_restore_regs_and_return_to_usermode ... iretq */

/* names of the program counters for printf("%e") in trails (mtype values
   are numbered from the END of the list, so this list is in reverse order) */
mtype = {
  user_path_exit_iretq,
  user_path_entry,
  nmi_final_iret,
  clear_NMI_executing,
  paranoid_exit_POP_REGS,
  in_DB_MC_handler_on_own_IST,
  in_PF_BP_handler,
  nmi_state_dec_return,
  swallow_unknown_accounting,
  in_external_handler,
  external_handlers,
  in_internal_handler,
  nmi_restart,
  exc_nmi,
  nmi_repeat_end,
  copy_SF_to_WF_CS_RIP,
  copy_SF_to_WF_SS_RSP_RFLAGS,
  Lnmi_setup,
  nmi_repeat,
  first_nmi,
  ctx_syscall_gap,
  ctx_kernel,
  ctx_user
};

#define ENC(p,s)   ((p) | ((s) << 6))
#define PC_OF(f)   ((f) & 63)
#define STK_OF(f)  ((f) >> 6)
#define F_REPEAT   ENC(I_REPEAT, 0)

#define IS_CTX(p)  ((p) == C_USER || (p) == C_KERN || (p) == C_GAP)

#ifdef MUTANT_COPY_OUTSIDE_REGION
#define IN_REGION(p) ((p) == I_REPEAT || (p) == I_SETUP)
#else
#define IN_REGION(p) ((p) >= I_REPEAT && (p) <= I_COPY2)   /* [nmi_repeat, nmi_repeat_end) */
#endif

/* "interrupted RSP lies in the NMI stack" (only the mutants look at it)     */
#define RSP_IN_NMI_STACK(p,s) ((p) == C_GAP || \
        ((s) == 0 && (p) >= I_FIRST && (p) <= X_FINAL && (p) != X_DB))

/* ---------------- CPU / hardware ----------------------------------------- */
bit  mask;              /* NMIs blocked (set by NMI delivery, cleared by ANY IRET) */
bit  latch;             /* one-deep NMI latch / pending NMI                        */
byte pc = C_KERN;
bit  cstk;              /* C code runs on the thread stack (user path)            */

/* ---------------- NMI stack slots (top T) -------------------------------- */
byte hw;                /* T-8..T-40  hardware frame                               */
bit  flag;              /* T-56       "NMI executing"                              */
bit  nested_cnt;        /* T-64       nested counter (saturating: only !=0 matters) */
bit  repeat_cnt;        /* T-72       repeat counter                               */
byte wf_rip;            /* T-88..T-120 working frame: RIP/CS words                 */
bit  wf_sp_sf;          /*             RSP/SS/RFLAGS words: 1 = RSP=&saved frame   */
byte sf;                /* T-128..T-160 saved (outermost) frame = pt_regs ip..ss   */
byte exc_ret[2];        /* return frame of #PF/#BP/#DB (per stack kind)            */
byte user_frame;        /* user path: the frame moved to the thread stack          */

/* ---------------- C level ------------------------------------------------ */
byte nmi_state;         /* 0 NOT_RUNNING, 1 EXECUTING, 2 LATCHED                  */
byte last_rip;          /* last_nmi_rip (0 = invalid)                              */
byte budget;            /* swallow budget                                         */
/* locals of exc_nmi()/default_do_nmi(): one C frame per stack kind, index
   cstk (0 = IST stack, 1 = thread stack of the user path)                  */
byte regs_ip[2];
byte k_int[2];          /* internal events consumed in this run                   */
bit  k_poll[2], k_ext[2], run_ext[2], b2b[2], is_rep[2], latched_rerun[2];

/* ---------------- sources ------------------------------------------------ */
byte int_pending;       /* internal (PMU-like) events not yet consumed            */
bit  ext_status;        /* external status bit (port 0x61-like)                   */
bit  poll_owed;         /* CPU owes a deferred external poll                      */
bit  poll_sent;         /* deferred-poll self-NMI sent, not yet consumed          */
bit  env_done;

/* ---------------- ghost state for the properties ------------------------- */
bit  ist_active;        /* an IST NMI owns the NMI-stack frames (FIRST..final IRET) */
byte outer_ctx;         /* the context that IST NMI interrupted                   */
bit  redirected;        /* a nested NMI redirected WF since it was last rebuilt    */
bit  need_run;          /* an NMI was raised and no handler run started since      */
bit  in_dispatch;       /* a dispatcher run is in progress                        */
byte credit;            /* NMI deliveries - handler runs                          */
bit  unknown_nmi;       /* an NMI was reported unknown                            */
bit  late_clear;        /* MUTANT_CLEAR_AFTER_IRET: flag clear still to execute   */
bit  iret_unmask = 1;   /* an IRET ran since the last NMI delivery (P8); in the
                           correct model it equals !mask, so it costs no states */
#ifdef MC_IN_WINDOW
bit  mc_done;           /* MC_IN_WINDOW: one #MC per run                          */
#endif

#define RAISE   latch = 1; need_run = 1

/* the poll self-NMI is an internal source that claims its NMI (amendment A2) */
#ifdef LITERAL_POLL
#define CLAIM_POLL 0
#else
#define CLAIM_POLL 1
#endif

/* the next instruction can execute: no NMI is being taken at this boundary */
#define CAN_STEP (!(latch && !mask) && !late_clear)

/* coverage probes (vacuity check): run.sh fails the correct model if pan
   lists any COVER printf as unreached (needs spin -o3: no statement merging) */
#define COVER(c, txt)  if :: (c) -> printf(txt) :: else -> skip fi

/* ------------------------------------------------------------------------ */
active proctype env()
{
  byte n;
  do
  :: atomic { n < MAXEV -> n++;             /* internal event: status + NMI edge */
              int_pending++; 
              printf("ENV  internal event (pending %d), NMI edge (latch was %d, mask %d)\n",
                     int_pending, latch, mask);
              RAISE }
  :: atomic { n < MAXEV -> n++;             /* external event                     */
              if
              :: !ext_status -> ext_status = 1;          /* status 0->1: NMI edge   */
                 printf("ENV  external event: status 0->1, NMI edge (latch was %d, mask %d)\n",
                        latch, mask);
                 RAISE
              :: else ->                                 /* merges into the status  */
#ifdef EXT_EDGE_EVERY
                 printf("ENV  external event merged into the set status bit, NMI edge anyway\n");
                 RAISE
#else
                 printf("ENV  external event merged into the set status bit\n")
#endif
              fi }
  :: atomic { env_done = 1; break }
  od
}

inline ret_from_exc_nmi()
{
  /* return from exc_nmi(); its locals die */
  k_int[cstk] = 0; k_poll[cstk] = 0; k_ext[cstk] = 0; run_ext[cstk] = 0;
  b2b[cstk] = 0; is_rep[cstk] = 0; latched_rerun[cstk] = 0; regs_ip[cstk] = 0;
  if :: cstk == 0 -> pc = X_EXIT :: else -> pc = U_EXIT fi
}

/* an exception inside the handler: #PF/#BP returns through error_return
   (popfq; ret or iretq, step at X_PF), #DB/#MC through paranoid_exit (iretq) */
inline maybe_exception(next)
{
  if
  :: pc = next
  :: exc_ret[cstk] = next; pc = X_PF;    /* #PF/#BP (perf callchain, text_poke int3) */
     printf("CPU  #PF/#BP taken in the handler (stack %d)\n", cstk)
  :: exc_ret[cstk] = next; pc = X_DB;    /* #DB/#MC on their own IST stacks */
     printf("CPU  #DB/#MC taken in the handler (own IST stack)\n")
  fi
}

active proctype cpu()
{
  byte dec, ksw;
  byte fr;                 /* X_PF return: what the saved RFLAGS / knob hold   */

  do
  /* ---- hardware: NMI delivery at an instruction boundary + the masked entry code up to the
   * nesting decision (asm_exc_nmi: pushq %rdx; testb $3,CS; nesting tests).
   * The NESTED / NESTED_OUT paths run entirely hardware-masked and touch only
   * HW frame, scratch, working frame and nested counter, so they are one step
   * ending with their IRETQ (which unmasks NMIs and resumes the interrupted pc).
   * ---------------------------------------------------------------------- */
  :: atomic { latch && !mask ->
       /* P8: NMIs are unmasked only by an IRET: a trap that returned by
          popfq; ret left them masked, so the NMI stays pending until an IRET */
       assert(iret_unmask);              /* P8: NMI taken with no IRET since the last NMI (fast return unmasked) */
       iret_unmask = 0;
       latch = 0; mask = 1; credit++;
       hw = ENC(pc, cstk);                    /* hardware frame at T-8..T-40 */
       dec = 4;                               /* 1 USER, 2 NESTED_OUT, 3 NESTED, 4 FIRST */
#ifndef MUTANT_USER_ON_IST
       if :: pc == C_USER -> dec = 1 :: else -> skip fi;   /* testb $3, CS(%rsp); jnz user path */
#endif
#ifndef MUTANT_NO_REGION_CHECK
       /* (a) RIP in [nmi_repeat, nmi_repeat_end) -> NESTED_OUT */
       if :: dec == 4 && IN_REGION(pc) && cstk == 0 -> dec = 2 :: else -> skip fi;
#endif
#ifdef MUTANT_RSP_ONLY
       if :: dec == 4 && RSP_IN_NMI_STACK(pc, cstk) -> dec = 3 :: else -> skip fi;
#else
       /* (b) "NMI executing" == 1 -> NESTED */
       if :: dec == 4 && flag -> dec = 3 :: else -> skip fi;
# if defined(MUTANT_RSP_RANGE)
       if :: dec == 4 && RSP_IN_NMI_STACK(pc, cstk) -> dec = 3 :: else -> skip fi;
# elif !defined(MUTANT_NO_RIP_CHECK)
       /* (c) RIP == nmi_final_iret (CS is kernel here) -> NESTED */
       if :: dec == 4 && pc == X_FINAL && cstk == 0 -> dec = 3 :: else -> skip fi;
# endif
#endif
       COVER(dec == 3 && pc == X_FINAL, "COVER T4: NMI at nmi_final_iret -> NESTED\n");
       COVER(dec == 3 && pc == X_FINAL && redirected,
             "COVER T3: NMI at nmi_final_iret after an earlier nested NMI\n");
       COVER(dec == 3 && (pc == X_EXIT || pc == X_CLR),
             "COVER T5: NMI in the exit sequence before the flag clear\n");
       COVER(dec == 3 && pc == X_PF && cstk == 0, "COVER T1: NMI inside a #PF/#BP in the NMI\n");
       COVER(dec == 3 && pc == X_DB, "COVER T7/T8: NMI inside #DB/#MC (own IST) caught by the flag\n");
       COVER(dec == 3 && redirected, "COVER T2: second nested NMI before the replay\n");
       COVER(dec == 2 && pc == I_REPEAT, "COVER T6: NMI at nmi_repeat -> NESTED_OUT\n");
       COVER(dec == 2 && pc == I_COPY2, "COVER T6: NMI during the SF->WF copy -> NESTED_OUT\n");
       COVER(dec == 4 && pc == C_GAP, "COVER T9/T10: NMI in the SYSCALL gap -> FIRST\n");
       COVER(dec == 4 && cstk == 1, "COVER T11: user-path handler interrupted by an IST NMI\n");
       if
       :: dec == 1 ->
          printf("NMI  taken at %e: user CS -> user path\n", pc);
          pc = U_ENTRY; cstk = 0
       :: dec == 2 ->                         /* NESTED_OUT: popq %rdx; iretq */
          printf("NMI  taken at %e.%d: NESTED_OUT (RIP in repeat region), iretq unmasks\n", pc, cstk);
          assert(ist_active);                 /* P1: first NMI dropped as nested (NESTED_OUT) */
          hw = 0; mask = 0; iret_unmask = 1
       :: dec == 3 ->                         /* NESTED */
          printf("NMI  taken at %e.%d: NESTED (executing=%d) -> WF:=nmi_repeat, iretq unmasks\n",
                 pc, cstk, flag);
          assert(ist_active);                 /* P1: first NMI dropped as nested (NESTED) */
#ifndef MUTANT_NO_REPEAT
          /* rewrite WF = {__KERNEL_DS, &saved frame, flags, __KERNEL_CS, nmi_repeat} */
          wf_rip = F_REPEAT; wf_sp_sf = 1;
          nested_cnt = 1;                     /* incq nested-counter slot */
          redirected = 1;
#endif
          hw = 0; mask = 0; iret_unmask = 1   /* popq %rdx; iretq */
       :: dec == 4 ->                         /* FIRST */
          printf("NMI  taken at %e.%d: FIRST (IST path)\n", pc, cstk);
          pc = I_FIRST; cstk = 0
       fi;
       dec = 0 }

#ifdef MUTANT_CLEAR_AFTER_IRET
  /* the flag clear executes only after the final IRETQ has retired */
  :: atomic { !(latch && !mask) && late_clear -> flag = 0; late_clear = 0;
       printf("CPU  (mutant) executing=0 after the final iretq\n") }
#endif

  /* ---- interrupted contexts: user / kernel / SYSCALL gap -------------- */
  :: atomic { CAN_STEP && IS_CTX(pc) ->
       last_rip = 0;                     /* an instruction ran: RIP changed */
       if :: pc = C_USER :: pc = C_KERN :: pc = C_GAP fi;
       printf("CTX  -> %e\n", pc) };
     progress_ctx: skip
  /* irq_work / hrtimer: send the deferred-poll self-NMI (IRQs on: user/kernel) */
  :: atomic { CAN_STEP && (pc == C_USER || pc == C_KERN) && poll_owed ->
       last_rip = 0; poll_owed = 0; poll_sent = 1; pc = C_KERN;
       printf("CTX  irq_work/hrtimer: deferred-poll self-NMI sent (latch was %d)\n", latch);
       RAISE }
  :: atomic { CAN_STEP && IS_CTX(pc) && env_done && !latch && !poll_owed ->
       printf("END  no more NMIs; CPU idle\n"); break }

  /* ---- IST path (asm_exc_nmi, kernel-mode NMI) ------------------------ */
  :: atomic { CAN_STEP && pc == I_FIRST ->  /* first_nmi: copy HW frame -> saved frame */
       printf("CPU  first_nmi: SF := HW = %e.%d\n", PC_OF(hw), STK_OF(hw));
       assert(!ist_active);              /* P2: FIRST NMI while an IST NMI owns the NMI stack */
       sf = hw; outer_ctx = hw; hw = 0; ist_active = 1;
       pc = I_SETUP }                    /* jmp .Lnmi_setup (still masked) */
  :: atomic { CAN_STEP && pc == I_REPEAT -> /* nmi_repeat: incq repeat counter */
       printf("CPU  nmi_repeat: incq repeat counter\n");
       repeat_cnt = 1; pc = I_SETUP }
  :: atomic { CAN_STEP && pc == I_SETUP ->  /* .Lnmi_setup: movq $1, executing */
       printf("CPU  .Lnmi_setup: executing=1\n");
       flag = 1;
#ifdef MUTANT_REPEAT_NO_COPY
       if :: wf_rip == F_REPEAT -> pc = I_END :: else -> pc = I_COPY1 fi
#else
       pc = I_COPY1
#endif
     }
  :: atomic { CAN_STEP && pc == I_COPY1 ->  /* pushq SS, RSP, RFLAGS of SF into WF */
       wf_sp_sf = 0; pc = I_COPY2 }
  :: atomic { CAN_STEP && pc == I_COPY2 ->  /* pushq CS, RIP of SF into WF */
       printf("CPU  WF := SF = %e.%d\n", PC_OF(sf), STK_OF(sf));
       wf_rip = sf; redirected = 0; pc = I_END }
  :: atomic { CAN_STEP && pc == I_END ->    /* nmi_repeat_end: */
       if
       :: mask = 0; iret_unmask = 1;     /* DEBUG_ENTRY knob set: IRET-to-self */
          printf("CPU  nmi_repeat_end: early-unmask IRET-to-self\n")
       :: skip
       fi;
       pc = E_ENTRY; cstk = 0 }          /* orig_ax; paranoid_entry; call exc_nmi */

  /* ---- C: exc_nmi() -------------------------------------------------- */
  :: atomic { CAN_STEP && pc == E_ENTRY ->
       if
       :: cstk == 0 ->                   /* xchg the asm counter slots */
          is_rep[0] = repeat_cnt; repeat_cnt = 0; nested_cnt = 0; regs_ip[0] = sf
       :: else -> is_rep[1] = 0; regs_ip[1] = user_frame
       fi;
       if
       :: nmi_state != 0 ->              /* nmi_state = NMI_LATCHED; return */
          printf("C    exc_nmi (stack %d): nmi_state busy -> LATCHED, return\n", cstk);
          COVER(cstk == 0, "COVER C-level LATCHED from the IST path\n");
          nmi_state = 2; ret_from_exc_nmi()
       :: else -> nmi_state = 1; latched_rerun[cstk] = 0; pc = E_RESTART
       fi }
  :: atomic { CAN_STEP && pc == E_RESTART -> /* nmi_restart: default_do_nmi() */
       assert(!in_dispatch);             /* P2: handler run re-entered */
       in_dispatch = 1;
       if :: cstk == 0 -> assert(sf == outer_ctx)  /* P3: pt_regs is not the interrupted context */
          :: else -> skip fi;
#ifndef NOBOUND
       assert(credit > 0);               /* P4: more handler runs than NMI deliveries (repeat loop) */
#endif
       if :: credit > 0 -> credit-- :: else -> skip fi;
       need_run = 0;
       b2b[cstk] = (regs_ip[cstk] == last_rip); last_rip = regs_ip[cstk];
       /* INTERNAL handlers: all run, each consumes what its source has */
       k_int[cstk] = int_pending; int_pending = 0;
       k_poll[cstk] = poll_sent; poll_sent = 0;
       COVER(is_rep[cstk], "COVER repeat run of the handler\n");
       printf("C    handler run (stack %d): repeat=%d latched=%d b2b=%d; internal consumed %d, poll %d\n",
              cstk, is_rep[cstk], latched_rerun[cstk], b2b[cstk], k_int[cstk], k_poll[cstk]);
       pc = E_F1 }
  :: atomic { CAN_STEP && pc == E_F1 -> maybe_exception(E_EXT) }
  :: atomic { CAN_STEP && pc == E_EXT ->
       /* EXTERNAL handlers: (1) no internal claimed, (2) suspect of merging,
          (3) deferred poll due */
#if defined(MUTANT_EXT_ONLY_UNCLAIMED)
       run_ext[cstk] = (k_int[cstk] == 0 && k_poll[cstk] == 0);
#elif defined(MUTANT_NO_POLL)
       run_ext[cstk] = (k_int[cstk] == 0 && k_poll[cstk] == 0) || is_rep[cstk] ||
                       latched_rerun[cstk] || b2b[cstk];
#else
       run_ext[cstk] = (k_int[cstk] == 0) || is_rep[cstk] || latched_rerun[cstk] ||
                       b2b[cstk] || k_poll[cstk];
#endif
       if :: run_ext[cstk] -> k_ext[cstk] = ext_status; ext_status = 0
          :: else -> k_ext[cstk] = 0 fi;
       printf("C    externals run=%d consumed=%d\n", run_ext[cstk], k_ext[cstk]);
       COVER(k_ext[cstk] && k_poll[cstk], "COVER T25: deferred poll serviced an external event\n");
       COVER(k_ext[cstk] && k_int[cstk] && !k_poll[cstk],
             "COVER T25: external serviced despite an internal claim (rule 2)\n");
       pc = E_F2 }
  :: atomic { CAN_STEP && pc == E_F2 -> maybe_exception(E_TAIL) }
  :: atomic { CAN_STEP && pc == E_TAIL ->
       /* events reported handled in this run, for the swallow budget */
#ifdef LITERAL_SWALLOW
       ksw = k_int[cstk] + CLAIM_POLL * k_poll[cstk];                /* internal only */
#else
       ksw = k_int[cstk] + CLAIM_POLL * k_poll[cstk] + k_ext[cstk];  /* amendment A1 */
#endif
       if
       :: k_int[cstk] + CLAIM_POLL * k_poll[cstk] + k_ext[cstk] == 0 ->   /* unclaimed */
#ifndef MUTANT_NO_SWALLOW
          if
          :: (b2b[cstk] || is_rep[cstk] || latched_rerun[cstk]) && budget > 0 ->
             budget--;
             printf("COVER swallowed empty NMI\n");
             printf("C    unclaimed NMI swallowed (budget now %d)\n", budget)
          :: else -> unknown_nmi = 1
          fi
#else
          unknown_nmi = 1
#endif
       :: else -> skip
       fi;
       if :: unknown_nmi ->
             printf("C    UNKNOWN NMI reported (b2b=%d repeat=%d latched=%d budget=%d)\n",
                    b2b[cstk], is_rep[cstk], latched_rerun[cstk], budget)
          :: else -> skip fi;
       /* P6: every NMI in the model has a source, so "unknown" is spurious */
       assert(!unknown_nmi);             /* P6: spurious unknown NMI reported */
       if :: ksw > 1 -> budget = budget + ksw - 1;
                        if :: budget > 3 -> budget = 3 :: else -> skip fi
          :: else -> skip fi;
#if !defined(MUTANT_NO_POLL) && !defined(MUTANT_EXT_ONLY_UNCLAIMED)
       if :: k_int[cstk] > 0 && !run_ext[cstk] -> poll_owed = 1;
             printf("C    internal claimed, externals not run: poll owed\n")
          :: else -> skip fi;
#endif
       ksw = 0;
       in_dispatch = 0;
       pc = E_DEC }
  :: atomic { CAN_STEP && pc == E_DEC ->   /* this_cpu_dec_return(nmi_state) */
       if
       :: nmi_state == 2 -> nmi_state = 1; latched_rerun[cstk] = 1; pc = E_RESTART;
          printf("COVER C-level latched rerun\n");
          printf("C    nmi_state was LATCHED -> goto nmi_restart\n")
       :: else -> nmi_state = 0; ret_from_exc_nmi()
       fi }

#ifdef MC_IN_WINDOW
  /* out of scope of the protocol: an asynchronous #MC taken at one of the two
     boundaries of the outer NMI where "NMI executing" is 0 (nmi_final_iret
     and nmi_repeat/.Lnmi_setup before the flag store) */
  :: atomic { CAN_STEP && (pc == X_FINAL || pc == I_REPEAT || pc == I_SETUP) &&
              cstk == 0 && !mc_done ->
       mc_done = 1; exc_ret[0] = pc; pc = X_DB;
       printf("CPU  #MC taken at %e (executing=%d, mask=%d)\n", exc_ret[0], flag, mask) }
#endif

  /* ---- #PF/#BP inside the handler: error_return, kernel CS, NMI context
   * (the NMI bits of preempt_count are set between irqentry_nmi_enter() and
   * irqentry_nmi_exit() of exc_nmi(), on both stacks).  The saved RFLAGS and
   * the debugfs knob are chosen here: nothing before the return reads them.
   * CS/SS are always the kernel's and the interrupted RSP lies above the
   * hardware frame for a trap in the handler, so those fallbacks never apply.
   * ---------------------------------------------------------------------- */
#define FR_TF    1   /* TF=1 in the saved RFLAGS: the kernel is single-stepped  */
#define FR_RF    2   /* #PF (a fault: RF=1 saved) with an instruction breakpoint
                        armed on the faulting instruction                       */
#define FR_KNOB  3   /* debugfs nmi_trap_iret=1: always iretq (old behaviour)   */
#ifdef MUTANT_FAST_RETURN_TF
#define TF_TEST  0
#else
#define TF_TEST  (fr == FR_TF)   /* testl $X86_EFLAGS_TF, EFLAGS(%rsp)          */
#endif
#ifdef MUTANT_FAST_RETURN_RF
#define RF_TEST  0
#else
#define RF_TEST  (fr == FR_RF)   /* testl $X86_EFLAGS_RF; testb DR7 enables     */
#endif
  :: atomic { CAN_STEP && pc == X_PF ->
       if
       :: fr = 0;                        /* TF=0; RF=0 (#BP is a trap) or no breakpoint */
          printf("CPU  #PF/#BP return: saved TF=0, no RF+breakpoint, knob off\n")
       :: fr = FR_TF;
          printf("CPU  #PF/#BP return: saved TF=1 (kernel single-stepped)\n")
       :: fr = FR_RF;
          printf("CPU  #PF/#BP return: saved RF=1 (#PF), instruction breakpoint armed\n")
       :: fr = FR_KNOB;
          printf("CPU  #PF/#BP return: debugfs nmi_trap_iret=1\n")
       fi;
       if
       :: fr == FR_KNOB || TF_TEST || RF_TEST ->
          /* restore_regs_and_return_to_kernel: iretq restores TF and RF */
          printf("CPU  #PF/#BP returns by iretq: NMIs unmasked\n");
          mask = 0; iret_unmask = 1
       :: else ->
          /* popq %rsp; popfq; ret: the NMI mask is left as it is */
          printf("CPU  #PF/#BP returns by popfq; ret: NMI mask stays %d (latch %d)\n", mask, latch);
          COVER(mask && latch, "COVER fast return: an NMI stays pending across a #PF/#BP in the handler\n");
#ifdef MUTANT_FAST_RETURN_SYNC_CORE
          mask = 0;                      /* sync_core() -> iret_to_self() */
          printf("CPU  (mutant) sync_core(): IRET-to-self unmasks NMIs\n");
#endif
          /* POPF loading TF=1 arms the single-step trap for the instruction
             after it, the RET: #DB reports the RET (in entry text) as the
             stepped instruction, before the interrupted one has run */
          assert(fr != FR_TF);           /* P9: single-step trap reported on the RET, not on the interrupted instruction */
          /* POPF cannot set RF: the restarted faulting instruction hits its
             instruction breakpoint again (one execution, two #DB events) */
          assert(fr != FR_RF)            /* P9: instruction breakpoint hit twice for one execution (RF lost) */
       fi;
       fr = 0; pc = exc_ret[cstk]; exc_ret[cstk] = 0 }

  /* ---- #DB/#MC inside the handler: paranoid_exit, iretq ------------- */
  :: atomic { CAN_STEP && pc == X_DB ->
#ifdef MUTANT_FAST_RETURN_DB
       /* paranoid_exit returns by popfq; ret like error_return, testing TF only */
       if
       :: printf("CPU  (mutant) #DB (trap: data breakpoint, int1) / #MC returns by popfq; ret\n");
          pc = exc_ret[cstk]; exc_ret[cstk] = 0
       :: printf("CPU  (mutant) #DB of an instruction breakpoint (fault): the handler set RF, popfq drops it; the instruction hits again\n");
          pc = X_DB
       fi
#else
       printf("CPU  iretq of the #DB/#MC: NMIs unmasked\n");
       mask = 0; iret_unmask = 1;        /* iretq of the exception (restores RF) */
       pc = exc_ret[cstk]; exc_ret[cstk] = 0
#endif
     }

  /* ---- IST exit ------------------------------------------------------ */
  :: atomic { CAN_STEP && pc == X_EXIT ->   /* paranoid_exit; POP_REGS; skip orig_ax+SF */
       pc = X_CLR }
  :: atomic { CAN_STEP && pc == X_CLR ->    /* movq $0, "NMI executing" */
#ifndef MUTANT_CLEAR_AFTER_IRET
       flag = 0;
       printf("CPU  executing=0\n");
#endif
       pc = X_FINAL }
  :: atomic { CAN_STEP && pc == X_FINAL ->  /* nmi_final_iret: iretq */
       printf("CPU  nmi_final_iret: iretq to WF = %e.%d (RSP=&SF: %d)\n",
              PC_OF(wf_rip), STK_OF(wf_rip), wf_sp_sf);
       /* P3: the frame consumed is the interrupted context's, or nmi_repeat
          after a nested NMI redirected it, and it is not torn */
       assert(wf_rip == outer_ctx || (wf_rip == F_REPEAT && redirected)); /* P3: final IRET frame is not the outer one */
       assert((wf_rip == F_REPEAT) == wf_sp_sf);   /* P3: working frame torn (RIP vs RSP) */
       /* CVE-2015-5157/3290 invariant: IST NMIs never IRET to user mode */
       assert(PC_OF(wf_rip) != C_USER);   /* P7: IST NMI IRETs to user (CVE-2015-5157/3290) */
       mask = 0; iret_unmask = 1;
#ifdef MUTANT_CLEAR_AFTER_IRET
       late_clear = 1;
#endif
       if
       :: wf_rip == F_REPEAT -> pc = I_REPEAT; cstk = 0;
          printf("COVER final iretq redirected to nmi_repeat\n")
       :: else ->
          pc = PC_OF(wf_rip); cstk = STK_OF(wf_rip);
          ist_active = 0; outer_ctx = 0; redirected = 0;
          sf = 0; wf_rip = 0; wf_sp_sf = 0           /* dead slots */
       fi }

  /* ---- user path ----------------------------------------------------- */
  :: atomic { CAN_STEP && pc == U_ENTRY ->
       assert(PC_OF(hw) == C_USER);      /* P0: user path entered from user mode */
       user_frame = hw; hw = 0;
       pc = E_ENTRY; cstk = 1 }
  :: atomic { CAN_STEP && pc == U_EXIT ->   /* ... swapgs; iretq to user */
       printf("CPU  user path: iretq to user\n");
       mask = 0; iret_unmask = 1; pc = PC_OF(user_frame); cstk = 0; user_frame = 0 }
  od;

  /* ---- end state: bounded arrivals have stopped and the CPU is idle ---- */
  assert(int_pending == 0);   /* P1: internal event lost                */
  assert(ext_status == 0);    /* P5: external event never serviced      */
  assert(!need_run);          /* P1: raised NMI not followed by a handler run */
  assert(!poll_sent);         /* P5: poll self-NMI never consumed        */
  assert(!flag && !ist_active && nmi_state == 0 && !in_dispatch && !mask) /* P0: idle state clean */
}
