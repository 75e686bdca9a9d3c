"""The words of the register of processing, in French and English; parent_portal.register
fills in the facts ({days}, {host}, ...) from the settings and the database."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Registre des activités de traitement",
        "controller": "Responsable du traitement",
        "dpo": "Délégué à la protection des données",
        "dpo.none": "non renseigné (MOULIN_GDPR_DPO_CONTACT)",
        "controller.none": "non renseigné (MOULIN_GDPR_CONTROLLER)",
        "generated": "Établi le {when} à partir de la configuration et de la base de données.",
        "purpose": "Finalité", "basis": "Base légale", "subjects": "Personnes concernées",
        "data": "Catégories de données", "recipients": "Destinataires",
        "retention": "Durée de conservation", "where": "Lieu du traitement",
        "transfers": "Transferts hors de l'UE", "transfers.none": "aucun",
        "inactive": "non mis en œuvre : {why}",
        "where.sqlite": "base SQLite {path} sur le serveur de Moulin",
        "where.postgresql": "base PostgreSQL {db} sur {host}",
        "where.https": "pages servies en HTTPS",
        "where.http": "pages servies SANS HTTPS (configuration de développement)",
        "where.data_dir": "dossier de données {path}",
        "canteen.name": "Comptes de cantine, cartes et passages en caisse",
        "canteen.purpose": "Payer les repas de cantine par carte sans contact, tenir les "
                           "comptes prépayés des élèves et informer les familles.",
        "canteen.basis": "Mission de service public de restauration scolaire (art. 6.1.e RGPD) "
                         "ou contrat avec les familles (art. 6.1.b) ; allergies et régimes : "
                         "consentement explicite des responsables légaux (art. 9.2.a), pour "
                         "protéger l'enfant au moment du repas.",
        "canteen.subjects": "{pupils} élève(s) inscrit(s) et leurs responsables légaux ; le "
                            "personnel de caisse et du secrétariat.",
        "canteen.data": "Identité de l'élève (nom, classe, date de naissance, identifiant de "
                        "l'école, photo) ; allergies et régime ; tranche tarifaire ; numéro de "
                        "carte ({cards} carte(s) active(s)) ; repas et passages ; solde et "
                        "opérations ; responsables légaux : nom, adresse e-mail, plafonds fixés.",
        "canteen.recipients": "Secrétariat et direction (rôles office et admin) ; caissiers "
                              "({tills} caisse(s)) : nom, photo, classe, allergies au passage ; "
                              "enseignants : leur classe ; responsables légaux : leurs enfants.",
        "canteen.retention": "Jusqu'au départ de l'élève, puis {days} jours : `moulin people "
                             "purge` anonymise alors l'élève et ses cartes, et les responsables "
                             "sans autre enfant. Les montants du grand livre sont conservés, "
                             "rattachés à un pseudonyme, pour la comptabilité.",
        "payments.name": "Paiements en ligne ({provider})",
        "payments.purpose": "Recharger le compte de cantine par carte bancaire.",
        "payments.basis": "Contrat avec la famille qui paie (art. 6.1.b).",
        "payments.subjects": "Responsables légaux qui paient en ligne.",
        "payments.data": "Adresse e-mail du payeur, montant, nom de l'élève dans le libellé du "
                         "paiement ; les données de carte bancaire ne passent que chez le "
                         "prestataire.",
        "payments.recipients.stripe": "Stripe Payments Europe Ltd (Irlande), sous-traitant, "
                                      "via {api}.",
        "payments.recipients.demo": "Aucun : prestataire de démonstration, sans paiement réel "
                                    "(refusé en production).",
        "payments.retention": "Intentions de paiement conservées avec le grand livre (pièces "
                              "comptables), rattachées à un pseudonyme après {days} jours.",
        "payments.transfers.stripe": "Stripe peut transférer des données à Stripe, Inc. "
                                     "(États-Unis) : Data Privacy Framework et clauses "
                                     "contractuelles types.",
        "payments.off": "aucun prestataire de paiement configuré (MOULIN_PAYMENT_PROVIDER=none)",
        "email.name": "E-mails aux familles",
        "email.purpose": "Prévenir les responsables légaux quand le solde devient bas.",
        "email.basis": "Mission de service public ou contrat (art. 6.1.e ou b), avec le service "
                       "de cantine.",
        "email.subjects": "Responsables légaux.",
        "email.data": "Adresse e-mail, prénom de l'enfant, solde et seuil d'alerte.",
        "email.recipients": "Le serveur de messagerie {host}:{port} ({tls}), sous-traitant ou "
                            "service de l'établissement ; expéditeur {sender}.",
        "email.tls.on": "STARTTLS", "email.tls.off": "sans chiffrement STARTTLS",
        "email.retention": "Messages envoyés effacés {days} jours après l'envoi.",
        "email.off": "aucun serveur SMTP configuré (MOULIN_SMTP_HOST)",
        "cameras.name": "Caméras de classe",
        "cameras.purpose": "Permettre aux responsables légaux de voir la classe de leur enfant "
                           "en direct, pendant les créneaux fixés par l'école.",
        "cameras.basis": "Consentement écrit de chaque responsable légal de la classe et "
                         "consentement exprès du personnel filmé (art. 6.1.a ; CNIL, "
                         "délibération 01-002).",
        "cameras.subjects": "Élèves et personnel de {rooms} classe(s) équipée(s) ; responsables "
                            "légaux qui regardent.",
        "cameras.data": "Images en direct, jamais enregistrées ; journal de visionnage (qui, "
                        "quelle caméra, quand, combien de temps, adresse IP, navigateur) ; "
                        "consentements recueillis.",
        "cameras.recipients": "Les responsables légaux des enfants de la classe filmée, et eux "
                              "seuls ; la direction pour le journal.",
        "cameras.retention": "Images : aucune conservation (en mémoire seulement). Journal de "
                             "visionnage : {view_days} jours. Consentements : jusqu'à "
                             "l'anonymisation du responsable.",
        "cameras.where": "{cameras} caméra(s) ; {local} captée(s) par le serveur, {nodes} par "
                         "des nœuds caméra.",
        "cameras.off": "aucune caméra installée",
        "audit.name": "Journal d'audit, sessions et connexions",
        "audit.purpose": "Sécurité du service et traçabilité des opérations (qui a fait quoi, "
                         "quand) ; limiter les tentatives de connexion.",
        "audit.basis": "Obligation de sécurité (art. 32) et de responsabilité (art. 5.2) ; "
                       "intérêt légitime (art. 6.1.f).",
        "audit.subjects": "Tous les utilisateurs : personnel et responsables légaux.",
        "audit.data": "Identifiant de l'utilisateur, action, date, adresse IP ({events} "
                      "entrée(s) d'audit) ; sessions (adresse IP, navigateur) ; adresses e-mail "
                      "saisies lors des connexions refusées.",
        "audit.recipients": "Administrateurs de Moulin.",
        "audit.retention": "Journal d'audit : sans effacement automatique (entrées jamais "
                           "modifiées) ; les entrées désignent les personnes par leur identifiant, "
                           "sans nom ni adresse e-mail, hormis les motifs saisis par le "
                           "personnel. "
                           "Sessions terminées et connexions refusées : {days} jours.",
        "backups.name": "Sauvegardes",
        "backups.purpose": "Restaurer le service et les comptes après une panne.",
        "backups.basis": "Obligation de sécurité (art. 32).",
        "backups.subjects": "Toutes les personnes ci-dessus.",
        "backups.data": "Toute la base de données ({engine}) ; les clés du dossier de données "
                        "se sauvegardent à part.",
        "backups.recipients": "Administrateurs du serveur.",
        "backups.retention": "Selon la rotation des fichiers choisie par l'exploitant : "
                             "l'effacement n'atteint une sauvegarde qu'à sa suppression, à "
                             "prévoir au plus tard {days} jours après.",
        "backups.where": "Fichiers écrits par `moulin db backup FICHIER` là où l'exploitant les "
                         "place.",
    },
    "en": {
        "title": "Register of processing activities",
        "controller": "Controller",
        "dpo": "Data protection officer",
        "dpo.none": "not set (MOULIN_GDPR_DPO_CONTACT)",
        "controller.none": "not set (MOULIN_GDPR_CONTROLLER)",
        "generated": "Drawn up on {when} from the configuration and the database.",
        "purpose": "Purpose", "basis": "Legal basis", "subjects": "Data subjects",
        "data": "Categories of data", "recipients": "Recipients",
        "retention": "Retention", "where": "Where it runs",
        "transfers": "Transfers outside the EU", "transfers.none": "none",
        "inactive": "not in use: {why}",
        "where.sqlite": "SQLite database {path} on Moulin's server",
        "where.postgresql": "PostgreSQL database {db} on {host}",
        "where.https": "pages served over HTTPS",
        "where.http": "pages served WITHOUT HTTPS (development configuration)",
        "where.data_dir": "data folder {path}",
        "canteen.name": "Lunch accounts, cards and canteen taps",
        "canteen.purpose": "Pay for school lunches with a contactless card, keep pupils' "
                           "prepaid accounts and inform families.",
        "canteen.basis": "Public task of school catering (GDPR art. 6(1)(e)) or contract with "
                         "the families (art. 6(1)(b)); allergies and diets: explicit consent "
                         "of the guardians (art. 9(2)(a)), to protect the child at the till.",
        "canteen.subjects": "{pupils} enrolled pupil(s) and their guardians; till and office "
                            "staff.",
        "canteen.data": "Pupil's identity (name, class, date of birth, school reference, "
                        "photo); allergies and diet; tariff band; card number ({cards} active "
                        "card(s)); meals and taps; balance and transactions; guardians: name, "
                        "e-mail address, limits they set.",
        "canteen.recipients": "Office and head staff (office and admin roles); cashiers "
                              "({tills} till(s)): name, photo, class, allergies at the tap; "
                              "teachers: their class; guardians: their own children.",
        "canteen.retention": "Until the pupil leaves, then {days} days: `moulin people purge` "
                             "then anonymises the pupil and their cards, and guardians with no "
                             "other child. The ledger's amounts are kept, under a pseudonym, "
                             "for the accounts.",
        "payments.name": "Online payments ({provider})",
        "payments.purpose": "Top up the lunch account by bank card.",
        "payments.basis": "Contract with the paying family (art. 6(1)(b)).",
        "payments.subjects": "Guardians who pay online.",
        "payments.data": "Payer's e-mail address, amount, pupil's name in the payment's "
                         "description; card details go to the provider only.",
        "payments.recipients.stripe": "Stripe Payments Europe Ltd (Ireland), processor, "
                                      "through {api}.",
        "payments.recipients.demo": "None: demonstration provider, no real payment (refused in "
                                    "production).",
        "payments.retention": "Payment intents kept with the ledger (accounting records), under "
                              "a pseudonym after {days} days.",
        "payments.transfers.stripe": "Stripe may transfer data to Stripe, Inc. (United "
                                     "States): Data Privacy Framework and standard "
                                     "contractual clauses.",
        "payments.off": "no payment provider configured (MOULIN_PAYMENT_PROVIDER=none)",
        "email.name": "E-mails to families",
        "email.purpose": "Tell guardians when the balance runs low.",
        "email.basis": "Public task or contract (art. 6(1)(e) or (b)), with the canteen "
                       "service.",
        "email.subjects": "Guardians.",
        "email.data": "E-mail address, child's first name, balance and alert threshold.",
        "email.recipients": "The mail server {host}:{port} ({tls}), a processor or the "
                            "school's own; sender {sender}.",
        "email.tls.on": "STARTTLS", "email.tls.off": "without STARTTLS encryption",
        "email.retention": "Sent messages deleted {days} days after sending.",
        "email.off": "no SMTP server configured (MOULIN_SMTP_HOST)",
        "cameras.name": "Classroom cameras",
        "cameras.purpose": "Let guardians watch their child's classroom live, during the slots "
                           "the school sets.",
        "cameras.basis": "Written consent of every guardian of the room and express consent "
                         "of the staff filmed (art. 6(1)(a); CNIL deliberation 01-002).",
        "cameras.subjects": "Pupils and staff of {rooms} equipped classroom(s); guardians who "
                            "watch.",
        "cameras.data": "Live images, never recorded; viewing log (who, which camera, when, "
                        "how long, IP address, browser); consents recorded.",
        "cameras.recipients": "The guardians of the filmed room's children, and only they; "
                              "the head staff for the log.",
        "cameras.retention": "Images: none kept (memory only). Viewing log: {view_days} days. "
                             "Consents: until the guardian is anonymised.",
        "cameras.where": "{cameras} camera(s); {local} captured by the server, {nodes} by "
                         "camera nodes.",
        "cameras.off": "no camera installed",
        "audit.name": "Audit log, sessions and sign-ins",
        "audit.purpose": "Security of the service and accountability (who did what, when); "
                         "limiting sign-in attempts.",
        "audit.basis": "Security (art. 32) and accountability (art. 5(2)) obligations; "
                       "legitimate interest (art. 6(1)(f)).",
        "audit.subjects": "Every user: staff and guardians.",
        "audit.data": "User id, action, time, IP address ({events} audit entries); sessions "
                      "(IP address, browser); e-mail addresses typed in failed sign-ins.",
        "audit.recipients": "Moulin's administrators.",
        "audit.retention": "Audit log: no automatic deletion (entries are never changed); "
                           "entries name people by id, without names or e-mail addresses, "
                           "except reasons typed by staff. Ended sessions and "
                           "failed sign-ins: {days} days.",
        "backups.name": "Backups",
        "backups.purpose": "Restore the service and the accounts after a failure.",
        "backups.basis": "Security obligation (art. 32).",
        "backups.subjects": "Everyone above.",
        "backups.data": "The whole database ({engine}); the data folder's keys are backed up "
                        "separately.",
        "backups.recipients": "The server's administrators.",
        "backups.retention": "As the operator rotates the files: erasure reaches a backup only "
                             "when it is deleted, which should be at most {days} days later.",
        "backups.where": "Files written by `moulin db backup FILE` where the operator puts "
                         "them.",
    },
}
